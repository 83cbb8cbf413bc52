//! postern-encryptor(1): mail to a recipient with an OpenPGP key leaves
//! encrypted to that key as PGP/MIME (RFC 3156).

pub mod keyring;
pub mod openpgp;
pub mod pgp_mime;
pub mod wkd;
