//! "Did you mean ...?": the nearest valid key or value for a misspelt one.

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" (or
/// "unknown variant ...", "expected `a` or `b`") into the unknown word and
/// the expected ones.
pub fn parse_unknown(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field ").or_else(|| message.strip_prefix("unknown variant "))?;
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_string);
    let unknown = quoted.next()?;
    Some((unknown, quoted.collect()))
}

/// The expected word closest to `word`, if it is close enough to be a typo.
#[must_use]
pub fn nearest(word: &str, expected: &[String]) -> Option<String> {
    expected
        .iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len().max(3) / 3 + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        let (word, expected) =
            parse_unknown("unknown field `extra_san`, expected one of `ca`, `extra_sans`, `key`").unwrap();
        assert_eq!(word, "extra_san");
        assert_eq!(nearest(&word, &expected).as_deref(), Some("extra_sans"));
    }

    #[test]
    fn no_suggestion_for_unrelated_words() {
        let expected = vec!["ca".to_string(), "key".to_string()];
        assert_eq!(nearest("validity_period_long", &expected), None);
    }
}
