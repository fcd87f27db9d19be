//! A minimal gRPC client of a running `spares` server: where is a part?
//! Speaks TLS when given a CA file, mutual TLS with a client certificate:
//!
//! `cargo run --example where_is_client -- --server HOST:PORT [--ca-cert ca.pem
//! [--client-cert client.pem --client-key client.key]] PART`
//!
//! `--server HOST:PORT` means `https://` with `--ca-cert` and `http://`
//! without, as in the `spares` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spares::cli::client::{ClientTls, Target, connect};
use spares::pb;
use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: where_is_client --server HOST:PORT [--ca-cert FILE [--client-cert FILE --client-key FILE]] PART"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut server, mut part) = (String::from("127.0.0.1:50051"), None);
    let mut tls: Option<ClientTls> = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--server" => server = value(),
            "--ca-cert" => {
                tls.get_or_insert_with(ClientTls::default).ca_cert = PathBuf::from(value());
            }
            "--client-cert" => {
                tls.get_or_insert_with(ClientTls::default).client_cert = Some(value().into());
            }
            "--client-key" => {
                tls.get_or_insert_with(ClientTls::default).client_key = Some(value().into());
            }
            _ if !arg.starts_with("--") => part = Some(arg),
            _ => usage(),
        }
    }
    let Some(part) = part else { usage() };
    let target = Target::from(server).tls(tls);
    let mut clients = match connect(target).await {
        Ok(clients) => clients,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1)
        }
    };
    let answer = clients
        .availability
        .where_is(pb::WhereIsRequest {
            part_id: part.clone(),
            only_with_stock: true,
            max_locations: 10,
            ..Default::default()
        })
        .await;
    match answer {
        Ok(answer) => {
            for location in answer.into_inner().locations {
                let stock = location.stock.unwrap_or_default();
                println!(
                    "{}\t{}\tavailable {}",
                    stock.location_id, location.location_name, stock.available
                );
            }
        }
        Err(status) => {
            eprintln!("error: {}: {}", status.code(), status.message());
            std::process::exit(1)
        }
    }
}
