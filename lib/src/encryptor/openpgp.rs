//! OpenPGP keys and encryption in process (rPGP).
