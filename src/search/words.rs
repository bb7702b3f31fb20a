//! Words for search, one definition for every backend: how text splits into words and how
//! they fold (lowercase, diacritics removed: what SQLite FTS5's `unicode61
//! remove_diacritics 2` tokenizer does, so that PostgreSQL's index, built from this folding,
//! finds the same words), how scripts written without spaces are indexed, and the snippet
//! shown under a hit.
//!
//! Chinese, Japanese, Korean, Thai and the like are written without spaces between words,
//! and no dictionary-free tokenizer can split them reliably. They are indexed a character at
//! a time ([`index_form`] puts a space after each such character), and a query word in them
//! becomes the phrase of its characters: a match is a run of those characters, in order,
//! anywhere in the text. That finds every occurrence (no segmenter can miss a word it does
//! not know), costs no dictionary, and reads the same in both backends; the price is a
//! larger index for such text and a few false hits where the characters happen to meet.

use std::sync::OnceLock;

/// Lowercase letters with diacritics that fold to an ASCII letter (from their Unicode
/// decompositions), in code point order, and those letters.
const DIACRITICS: &str = concat!(
    "àáâãäåçèéêëìíîïñòóôõöùúûüýÿāăąćĉċčďēĕėęě",
    "ĝğġģĥĩīĭįĵķĺļľńņňōŏőŕŗřśŝşšţťũūŭůűųŵŷźżž",
    "ſơưǎǐǒǔǖǘǚǜǟǡǧǩǫǭǰǵǹǻȁȃȅȇȉȋȍȏȑȓȕȗșțȟȧȩȫȭ",
    "ȯȱȳḁḃḅḇḉḋḍḏḑḓḕḗḙḛḝḟḡḣḥḧḩḫḭḯḱḳḵḷḹḻḽḿṁṃṅṇṉ",
    "ṋṍṏṑṓṕṗṙṛṝṟṡṣṥṧṩṫṭṯṱṳṵṷṹṻṽṿẁẃẅẇẉẋẍẏẑẓẕẖẗ",
    "ẘẙạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừ",
    "ửữựỳỵỷỹ",
);
const BASES: &str = concat!(
    "aaaaaaceeeeiiiinooooouuuuyyaaaccccdeeeee",
    "gggghiiiijklllnnnooorrrssssttuuuuuuwyzzz",
    "souaiouuuuuaagkoojgnaaaeeiioorruusthaeoo",
    "ooyabbbcdddddeeeeefghhhhhiikkkllllmmmnnn",
    "noooopprrrrsssssttttuuuuuvvwwwwwxxyzzzht",
    "wyaaaaaaaaaaaaeeeeeeeeiioooooooooooouuuu",
    "uuuyyyy",
);

fn table() -> &'static [(char, char)] {
    static TABLE: OnceLock<Vec<(char, char)>> = OnceLock::new();
    TABLE.get_or_init(|| DIACRITICS.chars().zip(BASES.chars()).collect())
}

/// Combining marks: dropped from words.
fn is_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}'
        | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Letters, digits and combining marks make words; everything else separates them.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// A character of a script written without spaces between words, indexed one at a time.
pub fn is_unspaced(c: char) -> bool {
    matches!(c,
        '\u{0e00}'..='\u{0eff}'      // Thai, Lao
        | '\u{1000}'..='\u{109f}'    // Myanmar
        | '\u{1780}'..='\u{17ff}'    // Khmer
        | '\u{1100}'..='\u{11ff}'    // Hangul Jamo
        | '\u{2e80}'..='\u{2fdf}'    // CJK radicals
        | '\u{3040}'..='\u{30ff}'    // Hiragana, Katakana
        | '\u{3130}'..='\u{318f}'    // Hangul compatibility Jamo
        | '\u{31f0}'..='\u{31ff}'    // Katakana extensions
        | '\u{3400}'..='\u{4dbf}'    // CJK extension A
        | '\u{4e00}'..='\u{9fff}'    // CJK unified ideographs
        | '\u{ac00}'..='\u{d7af}'    // Hangul syllables
        | '\u{f900}'..='\u{faff}'    // CJK compatibility ideographs
        | '\u{ff66}'..='\u{ff9f}'    // half-width Katakana
        | '\u{20000}'..='\u{2fa1f}') // CJK extensions B–F, compatibility supplement
}

/// A combining sign of an unspaced script (Thai and Lao vowel and tone marks, Khmer and
/// Myanmar signs): it belongs to the character before it.
fn is_joining(c: char) -> bool {
    is_mark(c)
        || matches!(c,
            '\u{0e31}' | '\u{0e34}'..='\u{0e3a}' | '\u{0e47}'..='\u{0e4e}'
            | '\u{0eb1}' | '\u{0eb4}'..='\u{0ebc}' | '\u{0ec8}'..='\u{0ecd}'
            | '\u{102b}'..='\u{103e}' | '\u{1056}'..='\u{1059}' | '\u{105e}'..='\u{1060}'
            | '\u{1062}'..='\u{1064}' | '\u{1067}'..='\u{106d}' | '\u{1071}'..='\u{1074}'
            | '\u{1082}'..='\u{108d}' | '\u{108f}' | '\u{109a}'..='\u{109d}'
            | '\u{17b4}'..='\u{17d3}' | '\u{17dd}')
}

fn push_folded(c: char, out: &mut String) {
    for c in c.to_lowercase() {
        if c.is_ascii() {
            out.push(c);
        } else if !is_mark(c) {
            let table = table();
            match table.binary_search_by_key(&c, |&(d, _)| d) {
                Ok(i) => out.push(table[i].1),
                Err(_) => out.push(c),
            }
        }
    }
}

/// Calls `f` with the byte range and folded form of each word of `text`, until it returns
/// false. A character of an unspaced script (with the signs joined to it) is a word of its
/// own.
pub fn each_word(text: &str, mut f: impl FnMut(usize, usize, &str) -> bool) {
    let mut folded = String::new();
    let mut start: Option<usize> = None;
    // Whether the word under way is one unspaced character (and its signs).
    let mut unit = false;
    for (i, c) in text.char_indices() {
        if unit && is_joining(c) {
            folded.push(c);
            continue;
        }
        if is_unspaced(c) && !is_joining(c) {
            if let Some(s) = start.take()
                && !folded.is_empty()
                && !f(s, i, &folded)
            {
                return;
            }
            folded.clear();
            push_folded(c, &mut folded);
            start = Some(i);
            unit = true;
        } else if is_word_char(c) {
            if unit {
                if let Some(s) = start.take()
                    && !folded.is_empty()
                    && !f(s, i, &folded)
                {
                    return;
                }
                unit = false;
            }
            if start.is_none() {
                start = Some(i);
                folded.clear();
            }
            push_folded(c, &mut folded);
        } else {
            unit = false;
            if let Some(s) = start.take()
                && !folded.is_empty()
                && !f(s, i, &folded)
            {
                return;
            }
        }
    }
    if let Some(s) = start
        && !folded.is_empty()
    {
        f(s, text.len(), &folded);
    }
}

/// The folded words of `text`.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_word(text, |_, _, w| {
        out.push(w.to_string());
        true
    });
    out
}

/// `text` as the index stores it: each character of an unspaced script stands apart (a
/// space on either side where it touches another word character), so that a tokenizer
/// that splits at spaces and punctuation (FTS5's unicode61) sees it as a word.
pub fn index_form(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unspaced) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    // Whether the previous character was part of a word, and whether that word is one
    // unspaced character (with its signs).
    let mut in_word = false;
    let mut in_unit = false;
    for c in text.chars() {
        if is_joining(c) && in_word {
            out.push(c);
            continue;
        }
        let word = is_word_char(c);
        let unit = word && is_unspaced(c);
        if word && in_word && (unit || in_unit) {
            out.push(' ');
        }
        out.push(c);
        in_word = word;
        in_unit = unit;
    }
    std::borrow::Cow::Owned(out)
}

/// Text from the index as people read it: the spaces [`index_form`] put between
/// characters of unspaced scripts taken out again.
pub fn display_form(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, c) in chars.iter().enumerate() {
        if *c == ' '
            && i > 0
            && i + 1 < chars.len()
            && (is_unspaced(chars[i - 1]) || is_unspaced(chars[i + 1]))
            && is_word_char(chars[i - 1])
            && is_word_char(chars[i + 1])
        {
            continue;
        }
        out.push(*c);
    }
    out
}

/// What a snippet marks: a word, a prefix, or a phrase (folded words in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// This word.
    Word(String),
    /// Any word starting so.
    Prefix(String),
    /// These words, one after the other.
    Phrase(Vec<String>),
}

/// The words of `text`: byte range and folded form.
fn spans(text: &str) -> Vec<(usize, usize, String)> {
    let mut spans = Vec::new();
    each_word(text, |s, e, w| {
        spans.push((s, e, w.to_string()));
        true
    });
    spans
}

/// For each word: which mark (by index) matches starting there, and how many words it
/// takes.
fn matches(spans: &[(usize, usize, String)], marks: &[Mark]) -> Vec<Option<(usize, usize)>> {
    let mut hits: Vec<Option<(usize, usize)>> = vec![None; spans.len()];
    for i in 0..spans.len() {
        for (m, mark) in marks.iter().enumerate() {
            let len = match mark {
                Mark::Word(w) => (spans[i].2 == *w).then_some(1),
                Mark::Prefix(p) => spans[i].2.starts_with(p.as_str()).then_some(1),
                Mark::Phrase(words) => (!words.is_empty()
                    && i + words.len() <= spans.len()
                    && words.iter().zip(&spans[i..]).all(|(w, s)| *w == s.2))
                .then_some(words.len()),
            };
            if let Some(len) = len {
                hits[i] = Some((m, len));
                break;
            }
        }
    }
    hits
}

/// How well `text` holds `marks`: how many different marks it has, then how many matches
/// in all. The section of a bulletin with the best score is the one a hit names.
pub fn score(text: &str, marks: &[Mark]) -> (usize, usize) {
    let spans = spans(text);
    let hits = matches(&spans, marks);
    let distinct: std::collections::HashSet<usize> =
        hits.iter().flatten().map(|(m, _)| *m).collect();
    (distinct.len(), hits.iter().flatten().count())
}

/// Words shown in a snippet.
const SNIPPET_WORDS: usize = 14;

/// A few words of `text` around the best place for `marks`: the window of
/// [`SNIPPET_WORDS`] words holding the most different marks (then the most marks), each
/// match in `[brackets]`, `…` where text was left out. Text from the index is shown in its
/// display form.
pub fn snippet(text: &str, marks: &[Mark]) -> String {
    let spans = spans(text);
    if spans.is_empty() {
        return String::new();
    }
    let hits = matches(&spans, marks);
    let window = SNIPPET_WORDS.min(spans.len());
    let mut best = (0usize, 0usize, 0usize);
    for start in 0..=(spans.len() - window) {
        let mut distinct = std::collections::HashSet::new();
        let mut total = 0;
        for (j, hit) in hits[start..start + window].iter().enumerate() {
            // Only matches wholly inside the window count.
            if let Some((m, len)) = hit
                && j + len <= window
            {
                distinct.insert(*m);
                total += 1;
            }
        }
        if (distinct.len(), total) > (best.1, best.2) {
            best = (start, distinct.len(), total);
        }
    }
    let start = best.0;
    let end = start + window;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut i = start;
    // From the very beginning when the window starts at the first word.
    let mut cursor = if start == 0 { 0 } else { spans[start].0 };
    while i < end {
        let (s, _, _) = spans[i];
        out.push_str(&text[cursor..s]);
        match hits[i] {
            Some((_, len)) => {
                let last = (i + len).min(end) - 1;
                out.push('[');
                out.push_str(&text[s..spans[last].1]);
                out.push(']');
                cursor = spans[last].1;
                i = last + 1;
            }
            None => {
                out.push_str(&text[s..spans[i].1]);
                cursor = spans[i].1;
                i += 1;
            }
        }
    }
    if end < spans.len() {
        out.push('…');
    } else {
        // To the very end when the window reaches the last word.
        out.push_str(&text[cursor..]);
    }
    display_form(&out.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_like_fts5_and_unspaced_scripts_split_by_character() {
        assert_eq!(words("Café CRÈME, e-mail"), ["cafe", "creme", "e", "mail"]);
        assert_eq!(
            words("組合の賃金交渉"),
            ["組", "合", "の", "賃", "金", "交", "渉"]
        );
        assert_eq!(words("Napo東京支部"), ["napo", "東", "京", "支", "部"]);
        // Thai: a consonant with its vowel and tone marks is one unit.
        assert_eq!(words("กันยา"), ["กั", "น", "ย", "า"]);
        assert_eq!(index_form("กันยา"), "กั น ย า");
    }

    #[test]
    fn the_index_form_spaces_unspaced_scripts_and_reads_back() {
        let text = "Napo東京支部の会議 (2026)";
        let indexed = index_form(text);
        assert_eq!(indexed, "Napo 東 京 支 部 の 会 議 (2026)");
        assert_eq!(display_form(&indexed), text);
        assert!(matches!(index_form("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn snippets_mark_the_best_window() {
        let text = "The branch met on Monday. Pay talks resume; the ballot on pay closes Friday and the result follows.";
        let s = snippet(
            text,
            &[Mark::Word("ballot".into()), Mark::Prefix("pay".into())],
        );
        assert!(s.contains("[ballot]") && s.contains("[pay]"), "{s}");
        assert!(s.starts_with('…') || s.starts_with("The"), "{s}");
        let s = snippet(text, &[Mark::Phrase(vec!["pay".into(), "talks".into()])]);
        assert!(s.contains("[Pay talks]"), "{s}");
        let s = snippet(
            &index_form("組合の賃金交渉について"),
            &[Mark::Phrase(words("賃金"))],
        );
        assert!(s.contains("[賃金]"), "{s}");
    }
}
