//! What counts as Verint's own answer (design §6, "only Verint's own answers count"). A gateway,
//! proxy or maintenance page in front of Verint can answer `200` with HTML; an answer proves
//! something only when it is the JSON the contract specifies. Every check of an answer's body is
//! here, pure (bytes in, a verdict out), so that the rules can be read, tested and fuzzed in one
//! place.

use serde::Deserialize;

/// An answer that is not the JSON the contract specifies: it proves nothing, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotVerint(pub &'static str);

/// A contact as DAS reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DasContact {
    /// Absent for calls that did not come through Amazon Connect.
    #[serde(default)]
    pub amazon_contact_id: Option<String>,
    #[serde(default)]
    pub interaction_id: Option<String>,
}

/// One page of a DAS listing: an object with a `contacts` array.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DasPage {
    pub contacts: Vec<DasContact>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A DAS listing page: an object whose `contacts` is an array (of objects).
pub fn das_page(body: &[u8]) -> Result<DasPage, NotVerint> {
    serde_json::from_slice(body)
        .map_err(|_| NotVerint("a DAS page that is not an object with a contacts array"))
}

/// `GET /contacts/{id}` answered 200: an object whose `amazonContactId` is the id asked for
/// (case-insensitively). Gives the interaction id (empty when Verint gives none).
pub fn contact(body: &[u8], asked: &str) -> Result<String, NotVerint> {
    let contact: DasContact = serde_json::from_slice(body)
        .map_err(|_| NotVerint("a DAS contact that is not a JSON object"))?;
    match contact.amazon_contact_id {
        Some(id) if id.eq_ignore_ascii_case(asked) => {
            Ok(contact.interaction_id.unwrap_or_default())
        }
        Some(_) => Err(NotVerint("a DAS contact that names another contact id")),
        None => Err(NotVerint("a DAS contact without amazonContactId")),
    }
}

/// An ingest's `201` or `409`: an object with a non-empty `interactionId`.
pub fn ingest(body: &[u8]) -> Result<String, NotVerint> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        interaction_id: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| NotVerint("an ingest answer that is not a JSON object"))?;
    match answer.interaction_id {
        Some(id) if !id.trim().is_empty() => Ok(id),
        _ => Err(NotVerint("an ingest answer without an interactionId")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str =
        "<html><head><title>Service maintenance</title></head><body>back soon</body></html>";

    #[test]
    fn a_maintenance_page_is_not_a_das_page() {
        assert!(das_page(PAGE.as_bytes()).is_err());
        assert!(das_page(b"{}").is_err(), "no contacts array");
        assert!(
            das_page(br#"{"contacts":{}}"#).is_err(),
            "contacts not an array"
        );
        assert!(das_page(br#"[]"#).is_err());
    }

    #[test]
    fn a_das_page_with_a_contacts_array_counts() {
        let page = das_page(
            br#"{"contacts":[{"amazonContactId":"A","interactionId":"i","startTime":"x"},{"interactionId":"j"}],"nextCursor":null}"#,
        )
        .expect("a page");
        assert_eq!(page.contacts.len(), 2);
        assert_eq!(page.next_cursor, None);
        assert!(
            das_page(br#"{"contacts":[]}"#).is_ok(),
            "an empty page, no cursor"
        );
    }

    #[test]
    fn a_contact_lookup_counts_only_when_it_names_the_contact_asked_for() {
        let id = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";
        let body = format!(
            r#"{{"amazonContactId":"{}","interactionId":"int-1"}}"#,
            id.to_uppercase()
        );
        assert_eq!(contact(body.as_bytes(), id), Ok("int-1".into()));
        assert!(contact(PAGE.as_bytes(), id).is_err());
        assert!(contact(b"{}", id).is_err());
        let other =
            r#"{"amazonContactId":"00000000-1d2e-4f60-8a9b-0c1d2e3f4a5b","interactionId":"x"}"#;
        assert!(contact(other.as_bytes(), id).is_err());
    }

    #[test]
    fn an_ingest_answer_counts_only_with_an_interaction_id() {
        assert_eq!(ingest(br#"{"interactionId":"int-9"}"#), Ok("int-9".into()));
        assert!(ingest(br#"{"interactionId":""}"#).is_err());
        assert!(ingest(br#"{}"#).is_err());
        assert!(ingest(b"").is_err());
        assert!(ingest(PAGE.as_bytes()).is_err());
    }
}
