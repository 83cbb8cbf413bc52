//! The Launchpad web service as a [`super::Directory`].
