//! Every reference to the design in the repository names a section of `docs/design.md`.
//!
//! A reference is the word "design" (any case, as a word or in a path: `DESIGN`, `design.md`,
//! `docs/design.md`) followed by `§`, `§§`, `section` or `sections` and a section number `N` or
//! `N.M`, possibly with more numbers after it (`§5, §7`, `sections 5 and 7`, `section 4 / 7`,
//! `§§ 4 and 5`). The parts may be split across a line break inside a comment. Inside
//! `docs/design.md` a bare `§N` is a reference too. Each must name a heading of the document:
//! `## N. …` or `### N.M …`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const DOCUMENT: &str = "docs/design.md";

/// The workspace root: this crate lives in `tests/`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

fn design_document() -> String {
    std::fs::read_to_string(workspace_root().join(DOCUMENT)).expect("docs/design.md is readable")
}

/// The section numbers the document defines: `N` for `## N. …`, `N.M` for `### N.M …`.
fn sections_of(document: &str) -> BTreeSet<String> {
    let number = |text: &str, parts: usize| -> Option<String> {
        let token = text.split_whitespace().next()?;
        let token = token.strip_suffix('.').unwrap_or(token);
        let pieces: Vec<&str> = token.split('.').collect();
        (pieces.len() == parts
            && pieces
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| token.to_owned())
    };
    document
        .lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("### ") {
                number(rest, 2)
            } else if let Some(rest) = line.strip_prefix("## ") {
                number(rest, 1)
            } else {
                None
            }
        })
        .collect()
}

/// A section a reference names, and where (1-based line of the number).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    section: String,
}

/// Skips spaces and line breaks; after a line break, also a comment's leader (`//`, `///`, `//!`,
/// `#`, `*`, `>`), so a reference split across two comment lines is still one.
fn skip_gap(text: &str) -> &str {
    let mut after_break = false;
    let mut rest = text;
    loop {
        let Some(c) = rest.chars().next() else {
            return rest;
        };
        let skip = match c {
            '\n' => {
                after_break = true;
                true
            }
            ' ' | '\t' | '\r' => true,
            '/' | '!' | '#' | '*' | '>' => after_break,
            _ => false,
        };
        if !skip {
            return rest;
        }
        rest = &rest[c.len_utf8()..];
    }
}

/// Strips a case-insensitive ASCII prefix.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A section number at the start of `text`: `N` or `N.M` (a `.` not followed by a digit ends
/// the sentence, not the number). Returns it and the rest.
fn section_number(text: &str) -> Option<(String, &str)> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let n = digits(text);
    if n == 0 {
        return None;
    }
    let rest = &text[n..];
    if let Some(after_dot) = rest.strip_prefix('.') {
        let m = digits(after_dot);
        if m > 0 {
            return Some((
                format!("{}.{}", &text[..n], &after_dot[..m]),
                &after_dot[m..],
            ));
        }
    }
    Some((text[..n].to_owned(), rest))
}

/// The numbers of one reference, from just after its `§`/`section` marker: the first number,
/// then any that follow as `, §N`, `and N`, `/ N`, `& N` (or, after `§§`, `, N`).
fn numbers_after_marker<'a>(mut text: &'a str, plural: bool, out: &mut Vec<(&'a str, String)>) {
    text = skip_gap(text);
    let Some((first, mut rest)) = section_number(text) else {
        return;
    };
    out.push((text, first));
    loop {
        let after_sep = if let Some(r) = rest.strip_prefix(',') {
            let r = skip_gap(r);
            match r.strip_prefix('§') {
                Some(r) => Some(r),
                None if plural => Some(r),
                None => None,
            }
        } else {
            let r = skip_gap(rest);
            ["and ", "/", "&"]
                .iter()
                .find_map(|sep| strip_prefix_ignore_case(r, sep))
                .map(|r| {
                    let r = skip_gap(r);
                    r.strip_prefix('§').unwrap_or(r)
                })
        };
        let Some(candidate) = after_sep.map(skip_gap) else {
            return;
        };
        let Some((number, next)) = section_number(candidate) else {
            return;
        };
        out.push((candidate, number));
        rest = next;
    }
}

/// Every reference to the design in `text`. `bare` also takes a `§N` with no "design" before it
/// (the document's own cross-references).
fn references_in(text: &str, bare: bool) -> Vec<Reference> {
    let bytes = text.as_bytes();
    let mut found: Vec<(&str, String)> = Vec::new();
    let mut i = 0;
    while i + 6 <= bytes.len() {
        let word = bytes[i..i + 6].eq_ignore_ascii_case(b"design");
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !(word && boundary) {
            i += 1;
            continue;
        }
        let mut rest = &text[i + 6..];
        rest = strip_prefix_ignore_case(rest, ".md").unwrap_or(rest);
        let rest = skip_gap(rest);
        let marker = [
            ("§§", true),
            ("§", false),
            ("sections", true),
            ("section", false),
        ]
        .iter()
        .find_map(|(m, plural)| strip_prefix_ignore_case(rest, m).map(|r| (r, *plural)));
        if let Some((after, plural)) = marker {
            numbers_after_marker(after, plural, &mut found);
        }
        i += 6;
    }
    if bare {
        let mut seen: BTreeSet<usize> = found.iter().map(|(at, _)| offset(text, at)).collect();
        for (at, _) in text.match_indices('§') {
            let after = &text[at + '§'.len_utf8()..];
            let plural = after.starts_with('§');
            let after = after.strip_prefix('§').unwrap_or(after);
            let mut more = Vec::new();
            numbers_after_marker(after, plural, &mut more);
            for (slice, number) in more {
                if seen.insert(offset(text, slice)) {
                    found.push((slice, number));
                }
            }
        }
    }
    let mut references: Vec<Reference> = found
        .into_iter()
        .map(|(at, section)| Reference {
            line: text[..offset(text, at)].matches('\n').count() + 1,
            section,
        })
        .collect();
    references.sort_by_key(|r| r.line);
    references
}

/// Where `slice` (a suffix of `text`) starts in it.
fn offset(text: &str, slice: &str) -> usize {
    slice.as_ptr() as usize - text.as_ptr() as usize
}

/// Every file git tracks, as paths relative to the workspace root.
fn tracked_files(root: &Path) -> Vec<String> {
    let output = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[test]
fn every_reference_to_the_design_names_a_section_it_has() {
    let root = workspace_root();
    let sections = sections_of(&design_document());
    let mut checked = 0usize;
    let mut bad = Vec::new();
    for path in tracked_files(&root) {
        // Binary files, files git tracks but the checkout lacks, and non-UTF-8 text are skipped.
        let Ok(bytes) = std::fs::read(root.join(&path)) else {
            continue;
        };
        if bytes.contains(&0) {
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        for reference in references_in(&text, path == DOCUMENT) {
            checked += 1;
            if !sections.contains(&reference.section) {
                bad.push(format!(
                    "{path}:{}: design §{} — no such section",
                    reference.line, reference.section
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} reference(s) to sections docs/design.md does not have:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(
        checked >= 20,
        "only {checked} references to the design were found: the scan is not seeing them"
    );
}

#[test]
fn the_design_has_sections_one_to_nine_and_a_picture_of_the_flow() {
    let document = design_document();
    let sections = sections_of(&document);
    let missing: Vec<u32> = (1..=9)
        .filter(|n| !sections.contains(&n.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/design.md lacks sections {missing:?}"
    );
    let blocks: Vec<&str> = document.split("```").skip(1).step_by(2).collect();
    assert!(
        blocks
            .iter()
            .any(|b| b.contains("planner") && b.contains("worker") && b.contains('►')),
        "docs/design.md has no picture of the flow (a fenced block showing planner and worker)"
    );
}

#[test]
fn every_accepted_form_of_a_reference_is_recognised() {
    let sections = |text: &str| -> Vec<String> {
        references_in(text, false)
            .into_iter()
            .map(|r| r.section)
            .collect()
    };
    for (text, expected) in [
        ("see DESIGN §4.", vec!["4"]),
        ("(design §5.2)", vec!["5.2"]),
        ("Design §7's table", vec!["7"]),
        ("docs/design.md §7", vec!["7"]),
        ("DESIGN.md section 9.", vec!["9"]),
        ("docs/design.md section 4, backfills", vec!["4"]),
        ("design.md section 3", vec!["3"]),
        ("DESIGN section 4 / 7", vec!["4", "7"]),
        ("DESIGN.md sections 5 and 7: retry", vec!["5", "7"]),
        ("(DESIGN §5, §7).", vec!["5", "7"]),
        ("design §§ 4.2 and 9", vec!["4.2", "9"]),
        ("(DESIGN §4, 2 hours later)", vec!["4"]),
        ("// where (DESIGN\n    /// §9) says", vec!["9"]),
        ("# (DESIGN.md section\n  # 5): retries", vec!["5"]),
        ("the design card, a redesign §4, design_references", vec![]),
    ] {
        assert_eq!(sections(text), expected, "in {text:?}");
    }
    let lines: Vec<usize> = references_in("a\nb design §1\nc\n(design §2.1)", false)
        .into_iter()
        .map(|r| r.line)
        .collect();
    assert_eq!(lines, [2, 4]);
}
