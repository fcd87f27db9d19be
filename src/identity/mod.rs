//! Who a credential says the caller is, independently of what the caller
//! may do: a verified client certificate (mutual TLS, [`certificate`]) or a
//! bearer JWT from an identity provider ([`jwt`]). Each yields a plain
//! identity (id, role name, stores, locations) that the authentication
//! layer turns into a principal. Nothing here knows protobuf or reads the
//! environment; the JWT check takes the time as an argument.

pub mod certificate;
pub mod jwt;
pub mod jwt_ring;
