//! Token ids as users write them (`1,15043,3186`, `1 2 3`, or the JSON array `[1, 2, 3]`
//! that `tokenize --json` prints), and the longest prompt a model takes: its context length
//! (the forward pass's memory grows with the square of the length).

use std::path::Path;

use crate::llama::ModelParams;

/// Why token ids were refused.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// An item that is not a non-negative 32-bit integer.
    #[error("{what}: item {index}: token id `{item}` is not a non-negative integer")]
    NotAnId {
        /// Where the ids came from (`--tokens`, a file name, standard input).
        what: String,
        /// The item's position, from 1.
        index: usize,
        /// The item as written.
        item: String,
    },
    /// No ids at all where a prompt needs some.
    #[error("{what}: no token ids")]
    Empty {
        /// Where the ids came from.
        what: String,
    },
    /// More tokens than the model's context length.
    #[error("{model}: {count} prompt tokens exceed the model's context length of {limit}; give a shorter prompt")]
    TooLong {
        /// The model.
        model: String,
        /// The prompt's tokens.
        count: usize,
        /// The context length.
        limit: usize,
    },
}

/// Token ids separated by commas or whitespace, optionally inside `[` `]`; none is not an
/// error here (`detokenize` of nothing is the empty text). `what` names the source in errors.
pub fn parse_token_ids(text: &str, what: &str) -> Result<Vec<u32>, PromptError> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    t.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            s.parse::<u32>().map_err(|_| PromptError::NotAnId {
                what: what.to_string(),
                index: i + 1,
                item: s.to_string(),
            })
        })
        .collect()
}

/// [`parse_token_ids`] for a prompt: at least one id.
pub fn parse_prompt_ids(text: &str, what: &str) -> Result<Vec<u32>, PromptError> {
    let ids = parse_token_ids(text, what)?;
    if ids.is_empty() {
        return Err(PromptError::Empty {
            what: what.to_string(),
        });
    }
    Ok(ids)
}

/// The most tokens one sequence may have: the model's context length (2048 for LLaMA 1,
/// 4096 with grouped-query attention, as `convert` writes them, when no file says).
pub fn context_limit(params: &ModelParams) -> usize {
    usize::try_from(params.default_context_length()).unwrap_or(usize::MAX)
}

/// Refuse a prompt of `count` tokens longer than `limit` for the model at `model`.
pub fn check_prompt_length(model: &Path, count: usize, limit: usize) -> Result<(), PromptError> {
    if count > limit {
        return Err(PromptError::TooLong {
            model: model.display().to_string(),
            count,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_every_spelling() {
        assert_eq!(
            parse_token_ids("1,15043,3186", "x").unwrap(),
            [1, 15043, 3186]
        );
        assert_eq!(parse_token_ids(" 1 2\n3 ", "x").unwrap(), [1, 2, 3]);
        assert_eq!(parse_token_ids("[1, 2, 3]\n", "x").unwrap(), [1, 2, 3]);
        assert_eq!(parse_token_ids("1,,2", "x").unwrap(), [1, 2]);
        assert!(parse_token_ids("", "x").unwrap().is_empty());
        assert!(parse_token_ids("[]", "x").unwrap().is_empty());
    }

    #[test]
    fn bad_items_name_their_position() {
        let e = parse_token_ids("1,-2", "--ids").unwrap_err();
        assert!(matches!(&e, PromptError::NotAnId { index: 2, item, .. } if item == "-2"));
        assert_eq!(
            e.to_string(),
            "--ids: item 2: token id `-2` is not a non-negative integer"
        );
        assert!(parse_token_ids("1,x", "x").is_err());
        assert!(parse_token_ids("4294967296", "x").is_err());
    }

    #[test]
    fn a_prompt_needs_ids() {
        let e = parse_prompt_ids(" [ ] ", "--tokens").unwrap_err();
        assert!(matches!(e, PromptError::Empty { .. }));
        assert_eq!(e.to_string(), "--tokens: no token ids");
        assert_eq!(parse_prompt_ids("7", "--tokens").unwrap(), [7]);
    }

    #[test]
    fn prompt_length_is_held_to_the_limit() {
        let m = Path::new("m.gguf");
        assert!(check_prompt_length(m, 4, 4).is_ok());
        let e = check_prompt_length(m, 5, 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.gguf: 5 prompt tokens exceed the model's context length of 4; give a shorter prompt"
        );
    }
}
