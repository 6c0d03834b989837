//! What Amazon Connect's `DescribeContact` answers for a generated contact, of either instance
//! (the simulator keys its answers by instance and contact id).

use super::*;

pub(super) fn describe(ctx: &Ctx<'_>, c: &Contact) -> ConnectContact {
    let latest = c
        .copies
        .iter()
        .map(|cp| cp.last_update)
        .max()
        .unwrap_or(c.disconnect);
    let attrs = c
        .copies
        .iter()
        .max_by_key(|cp| cp.last_update)
        .map_or(c.attributes.len(), |cp| cp.attrs);
    ConnectContact {
        instance_id: c.instance_id.clone(),
        id: c.id.clone(),
        arn: format!(
            "{}/contact/{}",
            if c.ours { &ctx.our_arn } else { &ctx.other_arn },
            c.id
        ),
        initial_contact_id: c.initial.clone(),
        previous_contact_id: c.previous.clone(),
        channel: c.channel.to_owned(),
        initiation_method: c.method.to_owned(),
        initiation_timestamp: c.initiation,
        disconnect_timestamp: Some(c.disconnect),
        last_update_timestamp: latest,
        agent: c.agent.as_ref().map(|a| ConnectAgent {
            id: a.id.clone(),
            connected_to_agent_timestamp: c.connected,
        }),
        queue: c.queue.as_ref().map(|q| ConnectQueue {
            id: q.id.clone(),
            enqueue_timestamp: c.enqueue,
        }),
        customer_endpoint: c.customer.as_ref().map(|a| ConnectEndpoint {
            endpoint_type: "TELEPHONE_NUMBER".into(),
            address: a.clone(),
        }),
        system_endpoint: c.system.as_ref().map(|a| ConnectEndpoint {
            endpoint_type: "TELEPHONE_NUMBER".into(),
            address: a.clone(),
        }),
        attributes: c.attributes.iter().take(attrs).cloned().collect(),
    }
}
