//! The project around the code: package fields, the dependency script,
//! systemd units, the demo, the scanner example and the library API from
//! outside.

mod contrib_systemd;
mod demo;
mod install_deps;
mod library_api;
mod package_fields;
