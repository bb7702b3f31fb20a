//! "Did you mean …?": the known name closest to one a person typed, for selectors,
//! audiences, list names and template fields. Names compare without regard to case, by
//! Jaro–Winkler similarity (strsim, as clap does for its own suggestions) or edit distance,
//! so a dropped, doubled or swapped letter (`londn`, `NSP`) still finds its name.

/// How alike two names must be (0 to 1) to be suggested.
const THRESHOLD: f64 = 0.8;

/// The candidate most like `typed`, when one is alike enough and not `typed` itself.
pub fn closest<'a, I>(typed: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = typed.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != typed)
        .map(|c| (likeness(&lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// How alike two names are: Jaro–Winkler, or for short names with two letters swapped
/// (`NSP` for `NPS`, which Jaro does not see) the Damerau–Levenshtein distance as a share.
fn likeness(a: &str, b: &str) -> f64 {
    strsim::jaro_winkler(a, b).max(strsim::normalized_damerau_levenshtein(a, b) + 0.14)
}

/// `; did you mean `NAME`?` for the closest candidate, or nothing.
pub fn did_you_mean<'a, I>(typed: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    closest(typed, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let names = [
            "London",
            "Wales",
            "Yorkshire",
            "NPS",
            "Cafcass",
            "PbNI",
            "CRC",
        ];
        assert_eq!(closest("londn", names), Some("London"));
        assert_eq!(closest("NSP", names), Some("NPS"));
        assert_eq!(closest("cafcas", names), Some("Cafcass"));
        assert_eq!(closest("Scotland", names), None);
        assert_eq!(closest("CPC", names), Some("CRC"));
        assert_eq!(closest("XYZ", names), None);
        assert_eq!(
            closest("London", names),
            None,
            "the same name is no suggestion"
        );
        assert_eq!(closest("TITLE", ["title"]), Some("title"));
        assert_eq!(
            did_you_mean(
                "organisation.adress",
                ["organisation.address", "organisation.name"]
            ),
            "; did you mean `organisation.address`?"
        );
        assert_eq!(did_you_mean("zzz", names), "");
    }
}
