//! The end-to-end tests' helpers live in the library (`local_stack::stack`), so that the CLI's
//! tests (`cli/tests/`) share them.
pub use local_stack::stack::*;
