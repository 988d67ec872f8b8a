//! The Hugging Face Hub's fixed vocabularies (license ids and pipeline tags), embedded at build
//! time so cards are validated offline, before any upload.
//!
//! The lists live in plain text files beside this module, one id per line, with their source
//! named in a header comment; updating one is a one-line change.
//!
//! Layer 1, the ground floor: imports nothing of the crate.

use std::sync::LazyLock;

static LICENSES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| ids(include_str!("hub_licenses.txt")));
static PIPELINE_TAGS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| ids(include_str!("pipeline_tags.txt")));

fn ids(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// License ids the Hub accepts.
pub fn licenses() -> &'static [&'static str] {
    &LICENSES
}

/// Pipeline tags the Hub knows.
pub fn pipeline_tags() -> &'static [&'static str] {
    &PIPELINE_TAGS
}

/// Is `id` a license the Hub accepts?
pub fn is_license(id: &str) -> bool {
    licenses().contains(&id)
}

/// Is `tag` a Hub pipeline tag?
pub fn is_pipeline_tag(tag: &str) -> bool {
    pipeline_tags().contains(&tag)
}

/// A hint for a pipeline tag the Hub does not know, naming the likely intended tags.
pub fn pipeline_tag_hint(found: &str) -> String {
    // ADR-026's `image-generation` is closest by spelling to `image-segmentation`, which would be
    // a misleading suggestion: name the generation tasks instead.
    if found.contains("image") && found.contains("generat") {
        return "image generators use `unconditional-image-generation` (class-conditional \
                included) or `text-to-image`"
            .to_owned();
    }
    if let Some(guess) = did_you_mean(found, pipeline_tags()) {
        return format!("did you mean `{guess}`?");
    }
    "see the Hub's list of tasks; `other` is always accepted".to_owned()
}

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(found: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(found, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hold_the_ids_cards_use_and_not_the_adr_026_mistakes() {
        assert!(is_license("apache-2.0"));
        assert!(is_license("cc-by-nc-4.0"));
        assert!(!is_license("Apache 2.0"));
        assert!(is_pipeline_tag("unconditional-image-generation"));
        assert!(is_pipeline_tag("text-to-image"));
        // ADR-026 wrote `pipeline_tag: image-generation`; the Hub has no such task.
        assert!(!is_pipeline_tag("image-generation"));
        assert!(pipeline_tag_hint("image-generation").contains("unconditional-image-generation"));
        assert_eq!(
            pipeline_tag_hint("text-to-imag"),
            "did you mean `text-to-image`?"
        );
    }
}
