//! The ticket key in a subject line: `[INC-42]`, `【INC-42】`, `［ＩＮＣ－４２］`.

use unicode_normalization::UnicodeNormalization;

const PAIRS: [(char, char); 2] = [('[', ']'), ('【', '】')];
const MAX_PREFIX: usize = 10;
/// i64 holds every 18-digit number.
const MAX_DIGITS: usize = 18;

/// `[INC-42]` (also `Re: 【INC-42】`, `RE:[inc-42]`) → `("INC", 42)`, for any prefix of 1–10
/// ASCII letters (returned upper-cased); the first match in the subject. Full-width forms
/// count as their ASCII twins (NFKC), as Japanese input methods often type them.
pub fn ticket_key_in_subject(subject: &str) -> Option<(String, i64)> {
    let folded: Vec<char> = subject.nfkc().collect();
    (0..folded.len()).find_map(|at| key_at(&folded, at))
}

/// The key whose opening bracket is at `at`, if the bracket opens one.
fn key_at(chars: &[char], at: usize) -> Option<(String, i64)> {
    let open = *chars.get(at)?;
    let close = PAIRS.iter().find(|(o, _)| *o == open)?.1;
    let rest = chars.get(at + 1..)?;
    let prefix_len = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if !(1..=MAX_PREFIX).contains(&prefix_len) || rest.get(prefix_len) != Some(&'-') {
        return None;
    }
    let digits = rest.get(prefix_len + 1..)?;
    let digit_len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=MAX_DIGITS).contains(&digit_len) || digits.get(digit_len) != Some(&close) {
        return None;
    }
    let number = digits
        .get(..digit_len)?
        .iter()
        .collect::<String>()
        .parse()
        .ok()?;
    let prefix = rest
        .get(..prefix_len)?
        .iter()
        .collect::<String>()
        .to_ascii_uppercase();
    Some((prefix, number))
}
