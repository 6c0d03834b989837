//! What an operator does: recoveryctl against the stack, and logs that never carry a customer's
//! phone number or attributes.
