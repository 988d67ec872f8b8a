//! Values in request URLs: every value that becomes a path segment or a query value (a repo id,
//! a tag, a revision, a commit id, an asset name) is percent-encoded here, so a value cannot add
//! a segment, a query or a fragment to a request.

/// Percent-encodes text as one URL path segment or query value: every byte but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, `/` included, so a tag
/// `models/v1.0.0` stays one segment (the Hub and GitHub decode it, as huggingface_hub and
/// octokit send it).
///
/// A whole segment `.` or `..` is resolved by URL normalisation even when encoded (`%2E%2E`):
/// values that could be one are refused where they enter ([`repo`], `version.tag-prefix`).
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A repository id `owner/name` as two encoded segments. Refused unless it is exactly two
/// parts, neither empty, `.` or `..`.
pub fn repo(id: &str) -> anyhow::Result<String> {
    let mut parts = id.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(name), None)
            if [owner, name]
                .iter()
                .all(|p| !p.is_empty() && *p != "." && *p != "..") =>
        {
            Ok(format!("{}/{}", segment(owner), segment(name)))
        }
        _ => Err(crate::error::Problem::new(format!(
            "the repository `{}` is not `owner/name`",
            id.escape_debug()
        ))
        .hint("write repositories as `owner/name`, e.g. `d-oit/tinydit-cats`")
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_are_encoded() {
        assert_eq!(segment("model.safetensors"), "model.safetensors");
        assert_eq!(segment("a b&c#d"), "a%20b%26c%23d");
    }

    #[test]
    fn revisions_are_encoded_as_one_segment() {
        assert_eq!(segment("main"), "main");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn hostile_values_stay_inside_their_segment() {
        for (value, encoded) in [
            ("v1.0.0?x=1", "v1.0.0%3Fx%3D1"),
            ("v1#frag", "v1%23frag"),
            ("../../user", "..%2F..%2Fuser"),
            ("rel/v1.0.0", "rel%2Fv1.0.0"),
            ("%2e%2e", "%252e%252e"),
            ("猫", "%E7%8C%AB"),
            ("a\nb", "a%0Ab"),
        ] {
            assert_eq!(segment(value), encoded, "{value:?}");
        }
    }

    #[test]
    fn repo_ids_are_two_encoded_segments() {
        assert_eq!(repo("alice/tinydit").expect("valid"), "alice/tinydit");
        assert_eq!(repo("a b/c?d").expect("encoded"), "a%20b/c%3Fd");
        for bad in ["alice", "a/b/c", "../x", "a/..", "./b", "/b", "a/", ""] {
            assert!(repo(bad).is_err(), "{bad:?}");
        }
    }
}
