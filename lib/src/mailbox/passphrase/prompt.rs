//! Asking for a passphrase on the terminal, without echo (crate
//! `rpassword`, which reads from `/dev/tty`): once to open a mailbox, twice
//! for a new one (`init`, `passwd`), so that a typing mistake does not lock
//! the owner out.
//!
//! The reading ([`ask`]) and the deciding ([`confirm`]) are apart, so that
//! the rules are tested without a terminal.

use std::io::IsTerminal;

use zeroize::Zeroizing;

use super::{Passphrase, PassphraseError, from_bytes};
use crate::exit::{Failure, ToFailure};

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("the two passphrases differ; nothing was changed")]
    Mismatch,
    #[error("cannot read a passphrase from the terminal: {0}")]
    Terminal(std::io::Error),
    #[error("{0}")]
    Bad(#[from] PassphraseError),
}

impl ToFailure for PromptError {
    fn to_failure(&self) -> Failure {
        match self {
            PromptError::Bad(e) => e.to_failure(),
            // A person at a terminal made a mistake: the same class as an
            // unreadable passphrase file (78).
            _ => Failure::config(self.to_string()),
        }
    }
}

/// Whether a prompt can be used: standard input is a terminal.
pub fn available() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks once, on the terminal, without echo.
pub fn ask(prompt: &str) -> Result<Passphrase, PromptError> {
    read_with(prompt, |p| rpassword::prompt_password(p))
}

/// Asks twice for a new passphrase; both answers must be the same.
pub fn ask_new(what: &str) -> Result<Passphrase, PromptError> {
    ask_new_with(what, |p| rpassword::prompt_password(p))
}

/// [`ask_new`] over any reader of one answer per prompt.
pub fn ask_new_with(
    what: &str,
    mut read: impl FnMut(&str) -> std::io::Result<String>,
) -> Result<Passphrase, PromptError> {
    let first = read_with(&format!("New passphrase for {what}: "), &mut read)?;
    let second = read_with("Repeat the new passphrase: ", &mut read)?;
    confirm(first, second)
}

fn read_with(
    prompt: &str,
    mut read: impl FnMut(&str) -> std::io::Result<String>,
) -> Result<Passphrase, PromptError> {
    let answer = Zeroizing::new(read(prompt).map_err(PromptError::Terminal)?);
    // The same rules as for a file or a descriptor (no newline is left).
    let bytes = Zeroizing::new(answer.as_bytes().to_vec());
    Ok(from_bytes(bytes, "the terminal")?)
}

/// The new passphrase, if both answers agree.
pub fn confirm(first: Passphrase, second: Passphrase) -> Result<Passphrase, PromptError> {
    // Not a secret compared against an attacker's guesses: plain equality.
    if first.as_bytes() == second.as_bytes() {
        Ok(first)
    } else {
        Err(PromptError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(list: &[&str]) -> impl FnMut(&str) -> std::io::Result<String> {
        let mut list: Vec<String> = list.iter().rev().map(|s| s.to_string()).collect();
        move |_| {
            list.pop()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
    }

    #[test]
    fn asked_twice_and_must_agree() {
        let pw = ask_new_with("bob", answers(&["s3cret words", "s3cret words"])).unwrap();
        assert_eq!(pw.as_str(), "s3cret words");
        assert!(matches!(
            ask_new_with("bob", answers(&["s3cret words", "s3cret word"])),
            Err(PromptError::Mismatch)
        ));
        assert!(matches!(
            ask_new_with("bob", answers(&["", ""])),
            Err(PromptError::Bad(PassphraseError::Empty { .. }))
        ));
        assert!(matches!(
            ask_new_with("bob", answers(&["only once"])),
            Err(PromptError::Terminal(_))
        ));
        let prompts = std::cell::RefCell::new(Vec::new());
        let _ = ask_new_with("bob", |p| {
            prompts.borrow_mut().push(p.to_owned());
            Ok("x".into())
        });
        assert_eq!(
            *prompts.borrow(),
            ["New passphrase for bob: ", "Repeat the new passphrase: "]
        );
    }

    #[test]
    fn rpassword_reads_one_line_without_its_newline() {
        let mut config = Some(
            rpassword::ConfigBuilder::new()
                .input_data("typed words\n")
                .output_discard()
                .build(),
        );
        let pw = read_with("Passphrase: ", |_| {
            let config = config.take().ok_or(std::io::ErrorKind::UnexpectedEof)?;
            rpassword::read_password_with_config(config)
        })
        .unwrap();
        assert_eq!(pw.as_str(), "typed words");
    }
}
