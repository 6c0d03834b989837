//! The tables every command prints in the same style.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

/// An empty table with `header`.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}
