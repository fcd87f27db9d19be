//! Client subcommands: call the server and print readable tables.

use super::table::Table;
use crate::pb;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pb::availability_service_client::AvailabilityServiceClient;
use crate::pb::inventory_service_client::InventoryServiceClient;
use crate::pb::network_service_client::NetworkServiceClient;
use crate::pb::planning_service_client::PlanningServiceClient;
use std::path::{Path, PathBuf};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not reach the server.
    #[error(
        "cannot reach the server at {url}: {} (is `spares serve` or `spares demo` running?)",
        error_chain(source)
    )]
    Connect {
        /// The URL tried.
        url: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// The server refused the request.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// A certificate or key file could not be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// An error with its causes, so a TLS failure says why ("invalid peer
/// certificate: UnknownIssuer"), not only "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors repeat their source in their own message.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The credentials a client adds to every call (an interceptor): an API
/// key in `x-api-key`, or a bearer token (a JWT from the organisation's
/// identity provider) in `authorization: Bearer <token>`.
#[derive(Debug, Clone, Default)]
pub struct CallCredentials {
    api_key: Option<MetadataValue<Ascii>>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl CallCredentials {
    /// Credentials carrying `api_key`, if given.
    ///
    /// # Errors
    /// [`ClientError::Usage`] if the key cannot be a header value.
    pub fn new(api_key: Option<&str>) -> Result<Self, ClientError> {
        Self::with_bearer(api_key, None)
    }

    /// Credentials carrying `api_key` or `bearer_token`, if given.
    ///
    /// # Errors
    /// [`ClientError::Usage`] if both are given (the server would act as
    /// the key and ignore the token, which is never what was meant), or if
    /// one cannot be a header value.
    pub fn with_bearer(
        api_key: Option<&str>,
        bearer_token: Option<&str>,
    ) -> Result<Self, ClientError> {
        let api_key = api_key.map(str::trim).filter(|k| !k.is_empty());
        let bearer_token = bearer_token.map(str::trim).filter(|t| !t.is_empty());
        if api_key.is_some() && bearer_token.is_some() {
            return Err(ClientError::Usage(
                "both an API key (--api-key / SPARES_API_KEY) and a bearer token (--bearer-token / SPARES_BEARER_TOKEN) are set: give one".into(),
            ));
        }
        let api_key = api_key
            .map(|key| {
                key.parse::<MetadataValue<Ascii>>().map_err(|_| {
                    ClientError::Usage(
                        "--api-key / SPARES_API_KEY: not a valid key (expected spk_...)".into(),
                    )
                })
            })
            .transpose()?;
        let authorization = bearer_token
            .map(|token| {
                format!("Bearer {token}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| {
                        ClientError::Usage(
                            "--bearer-token / SPARES_BEARER_TOKEN: not a valid token (printable ASCII, e.g. a JWT)".into(),
                        )
                    })
            })
            .transpose()?;
        Ok(Self {
            api_key,
            authorization,
        })
    }
}

impl tonic::service::Interceptor for CallCredentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(key) = &self.api_key {
            request
                .metadata_mut()
                .insert(crate::auth::keys::KEY_HEADER, key.clone());
        }
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that presents the caller's credentials on every call.
pub type AuthChannel = InterceptedService<Channel, CallCredentials>;

/// Clients of the five services over one channel.
pub struct Clients {
    /// NetworkService.
    pub network: NetworkServiceClient<AuthChannel>,
    /// InventoryService.
    pub inventory: InventoryServiceClient<AuthChannel>,
    /// AvailabilityService.
    pub availability: AvailabilityServiceClient<AuthChannel>,
    /// PlanningService.
    pub planning: PlanningServiceClient<AuthChannel>,
    /// AdminService.
    pub admin: AdminServiceClient<AuthChannel>,
}

/// How a client speaks TLS: the CA that signed the server's certificate
/// and, for a server that asks for one (mutual TLS), the client's own
/// certificate and key. All are PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// CA certificate(s) the server's certificate must chain to.
    pub ca_cert: PathBuf,
    /// The client's certificate chain, for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// The client's private key, for mutual TLS.
    pub client_key: Option<PathBuf>,
    /// The name the server's certificate must carry, when it differs from
    /// the host in the URL (e.g. connecting by IP address).
    pub server_name: Option<String>,
}

/// A server to call, how, and as whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub url: String,
    /// TLS settings; required for `https://`.
    pub tls: Option<ClientTls>,
    /// An API key (`spk_...`) sent with every call, if any.
    pub api_key: Option<String>,
    /// A bearer token (a JWT) sent with every call, if any.
    pub bearer_token: Option<String>,
}

impl Target {
    /// A plaintext target `url` presenting `api_key`.
    pub fn new(url: impl Into<String>, api_key: Option<String>) -> Self {
        Self {
            url: url.into(),
            tls: None,
            api_key,
            bearer_token: None,
        }
    }

    /// This target presenting `bearer_token` (`None`: no token).
    #[must_use]
    pub fn bearer_token(mut self, bearer_token: Option<String>) -> Self {
        self.bearer_token = bearer_token;
        self
    }

    /// This target presenting `api_key` (`None`: anonymous).
    #[must_use]
    pub fn api_key(mut self, api_key: Option<String>) -> Self {
        self.api_key = api_key;
        self
    }

    /// This target with TLS settings (`None`: plaintext).
    #[must_use]
    pub fn tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }

    /// The URL to dial: one with a scheme is taken as is; `host:port`
    /// alone means `https://host:port` with TLS settings and
    /// `http://host:port` without.
    pub fn dial_url(&self) -> String {
        let server = self.url.trim();
        if server.contains("://") {
            server.to_string()
        } else if self.tls.is_some() {
            format!("https://{server}")
        } else {
            format!("http://{server}")
        }
    }
}

impl From<&str> for Target {
    /// A plaintext target.
    fn from(url: &str) -> Self {
        Self::new(url, None)
    }
}

impl From<&String> for Target {
    /// A plaintext target.
    fn from(url: &String) -> Self {
        Self::from(url.as_str())
    }
}

impl From<String> for Target {
    /// A plaintext target.
    fn from(url: String) -> Self {
        Self::new(url, None)
    }
}

impl From<&Target> for Target {
    fn from(target: &Target) -> Self {
        target.clone()
    }
}

/// The URL for a plaintext `--server` value: `host:port` alone means plain
/// `http://host:port`; a value with a scheme is taken as it is.
pub fn server_url(server: &str) -> String {
    Target::from(server).dial_url()
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::File {
        path: path.to_path_buf(),
        source,
    })
}

impl ClientTls {
    /// tonic's TLS settings from the files (rustls with ring underneath).
    ///
    /// # Errors
    /// [`ClientError::File`] for a file that cannot be read;
    /// [`ClientError::Usage`] for a client certificate without its key or
    /// the reverse.
    pub fn config(&self) -> Result<ClientTlsConfig, ClientError> {
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_pem(&self.ca_cert)?));
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Usage(
                    "--client-cert and --client-key go together".into(),
                ));
            }
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        Ok(config)
    }
}

/// A connected channel to `target`, over TLS for `https://`, presenting
/// the target's API key on every call.
///
/// # Errors
/// [`ClientError::Usage`] for a bad URL or key, `https://` without a CA
/// file or a CA file with `http://`; TLS file errors as
/// [`ClientTls::config`]; [`ClientError::Connect`] when the server cannot be
/// reached or the TLS handshake fails.
pub async fn channel(target: impl Into<Target>) -> Result<AuthChannel, ClientError> {
    let target = target.into();
    let credentials =
        CallCredentials::with_bearer(target.api_key.as_deref(), target.bearer_token.as_deref())?;
    let url = &target.dial_url();
    let mut endpoint = Channel::from_shared(url.clone())
        .map_err(|e| ClientError::Usage(format!("bad server URL {url:?}: {e}")))?;
    match (&target.tls, url.starts_with("https://")) {
        (Some(tls), true) => {
            endpoint =
                endpoint
                    .tls_config(tls.config()?)
                    .map_err(|source| ClientError::Connect {
                        url: url.clone(),
                        source,
                    })?;
        }
        (None, true) => {
            return Err(ClientError::Usage(format!(
                "{url}: https needs --ca-cert FILE, the CA certificate that signed the server's"
            )));
        }
        (Some(_), false) => {
            return Err(ClientError::Usage(format!(
                "--ca-cert is given but {url} is not https://; use https://HOST:PORT or HOST:PORT"
            )));
        }
        (None, false) => {}
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            url: url.clone(),
            source,
        })?;
    Ok(InterceptedService::new(channel, credentials))
}

/// Fetches a paged listing page by page. `fetch` is given each page request (`page_size`,
/// where 0 is the server's default, and the previous page's token) and returns that page's
/// items and the next token. Stops when the server has no more pages or more than `limit`
/// items are in hand; returns at most `limit` items and whether more matched beyond them.
///
/// # Errors
/// The first error `fetch` returns.
pub async fn fetch_pages<T, E>(
    page_size: u32,
    limit: usize,
    mut fetch: impl AsyncFnMut(pb::PageRequest) -> Result<(Vec<T>, String), E>,
) -> Result<(Vec<T>, bool), E> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = fetch(pb::PageRequest {
            page_size,
            page_token,
        })
        .await?;
        items.extend(page);
        if items.len() > limit {
            items.truncate(limit);
            return Ok((items, true));
        }
        if next.is_empty() {
            return Ok((items, false));
        }
        page_token = next;
    }
}

/// Every item of a paged listing ([`fetch_pages`] without a limit).
///
/// # Errors
/// The first error `fetch` returns.
pub async fn fetch_all<T, E>(
    page_size: u32,
    fetch: impl AsyncFnMut(pb::PageRequest) -> Result<(Vec<T>, String), E>,
) -> Result<Vec<T>, E> {
    Ok(fetch_pages(page_size, usize::MAX, fetch).await?.0)
}

/// Connects to `target`: a URL (`http://host:port`, or `host:port`) for
/// plaintext, or a [`Target`] with TLS settings.
///
/// # Errors
/// As [`channel`].
pub async fn connect(target: impl Into<Target>) -> Result<Clients, ClientError> {
    let channel = channel(target).await?;
    let max = 64 * 1024 * 1024;
    Ok(Clients {
        network: NetworkServiceClient::new(channel.clone()).max_decoding_message_size(max),
        inventory: InventoryServiceClient::new(channel.clone()).max_decoding_message_size(max),
        availability: AvailabilityServiceClient::new(channel.clone())
            .max_decoding_message_size(max),
        planning: PlanningServiceClient::new(channel.clone()).max_decoding_message_size(max),
        admin: AdminServiceClient::new(channel).max_decoding_message_size(max),
    })
}

fn kind_name(kind: i32) -> &'static str {
    match pb::LocationKind::try_from(kind) {
        Ok(pb::LocationKind::FactoryDepot) => "depot",
        Ok(pb::LocationKind::RegionalWarehouse) => "regional",
        Ok(pb::LocationKind::Store) => "store",
        _ => "?",
    }
}

/// `spares locations`.
pub async fn locations(server: &Target, kind: Option<&str>) -> Result<String, ClientError> {
    let kind = match kind {
        None => pb::LocationKind::Unspecified,
        Some("depot") => pb::LocationKind::FactoryDepot,
        Some("regional") => pb::LocationKind::RegionalWarehouse,
        Some("store") => pb::LocationKind::Store,
        Some(other) => {
            return Err(ClientError::Usage(format!(
                "unknown kind {other:?}: use depot, regional or store"
            )));
        }
    };
    let mut clients = connect(server).await?;
    let mut table = Table::new(&["id", "name", "kind", "time zone", "cut-off", "source"]);
    let locations = fetch_all(1000, async |page| {
        let response = clients
            .network
            .list_locations(pb::ListLocationsRequest {
                page: Some(page),
                kind: kind as i32,
            })
            .await?
            .into_inner();
        Ok::<_, ClientError>((response.locations, response.next_page_token))
    })
    .await?;
    for l in locations {
        let cutoff = l
            .order_cutoff_local
            .map(|t| format!("{:02}:{:02}", t.hour, t.minute))
            .unwrap_or_default();
        table.row(vec![
            l.id,
            l.name,
            kind_name(l.kind).into(),
            l.time_zone,
            cutoff,
            l.replenishment_source_id,
        ]);
    }
    Ok(table.render())
}

/// `spares part P`.
pub async fn part(server: &Target, part_id: &str) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let r = clients
        .network
        .get_part(pb::GetPartRequest {
            part_id: part_id.into(),
        })
        .await?
        .into_inner();
    let p = r.part.unwrap_or_default();
    let criticality = pb::Criticality::try_from(p.criticality)
        .map(|c| c.as_str_name())
        .unwrap_or("?");
    let mut out = format!(
        "{}  {}\n  unit cost ${:.2}, {}, {}\n",
        p.id,
        p.description,
        p.unit_cost_usd,
        criticality
            .trim_start_matches("CRITICALITY_")
            .to_lowercase(),
        if p.kind == pb::PartKind::Repairable as i32 {
            "repairable"
        } else {
            "consumable"
        }
    );
    if !r.predecessor_part_ids.is_empty() {
        out.push_str(&format!(
            "  supersedes: {}\n",
            r.predecessor_part_ids.join(" -> ")
        ));
    }
    if !r.successor_part_ids.is_empty() {
        out.push_str(&format!(
            "  superseded by: {}\n",
            r.successor_part_ids.join(" -> ")
        ));
    }
    out.push_str(&format!(
        "  supplier lead time: {}\n",
        lead_time_text(p.supplier_lead_time.as_ref())
    ));
    if let Some(cost) = p.downtime_cost_usd_per_hour {
        out.push_str(&format!("  downtime cost: ${cost:.2} per hour waiting\n"));
    }
    Ok(out)
}

fn lead_time_text(lead: Option<&pb::LeadTime>) -> String {
    use pb::lead_time::Distribution as D;
    match lead.and_then(|l| l.distribution.as_ref()) {
        None => "default (log-normal, mean 21 days, sd 7)".into(),
        Some(D::Fixed(f)) => format!("{} days", f.lead_time_days),
        Some(D::Lognormal(l)) => format!(
            "log-normal, p50 {} days, p90 {} days",
            l.lead_time_days_p50, l.lead_time_days_p90
        ),
        Some(D::Empirical(e)) => format!("{} observed lead times", e.lead_time_days_samples.len()),
    }
}

/// `spares stock P [--location L]`.
pub async fn stock(
    server: &Target,
    part_id: &str,
    location: Option<&str>,
) -> Result<String, ClientError> {
    let part_id = if part_id == "-" { "" } else { part_id };
    let mut clients = connect(server).await?;
    let mut table = Table::new(&[
        "part",
        "location",
        "on hand",
        "reserved",
        "available",
        "protected",
        "in transit",
        "next arrival",
    ]);
    let positions = fetch_all(1000, async |page| {
        let request = pb::GetStockRequest {
            part_id: part_id.into(),
            location_id: location.unwrap_or_default().into(),
            page: Some(page),
        };
        let response = clients.inventory.get_stock(request).await?.into_inner();
        Ok::<_, ClientError>((response.positions, response.next_page_token))
    })
    .await?;
    for s in positions {
        let next = s
            .inbound
            .iter()
            .filter_map(|i| i.expected_arrival)
            .min_by_key(|t| (t.seconds, t.nanos))
            .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
            .map(|t| t.strftime("%Y-%m-%d %H:%MZ").to_string())
            .unwrap_or_default();
        table.row(vec![
            s.part_id,
            s.location_id,
            s.on_hand.to_string(),
            s.reserved.to_string(),
            s.available.to_string(),
            s.protected.to_string(),
            s.in_transit.to_string(),
            next,
        ]);
    }
    if table.is_empty() {
        return Ok("no stock recorded\n".into());
    }
    Ok(table.render())
}

/// What-if options of `spares simulate`, as typed on the command line.
#[derive(Debug, Default)]
pub struct WhatIfArgs {
    /// LOCATION:START_DAY:DAYS.
    pub outages: Vec<String>,
    /// LOCATION:MULTIPLIER.
    pub lead_time_shocks: Vec<String>,
    /// STORE:MODEL:MACHINES.
    pub fleet_growth: Vec<String>,
    /// Failure-rate multiplier.
    pub demand_multiplier: Option<f64>,
}

fn fields<'a>(
    flag: &str,
    value: &'a str,
    n: usize,
    shape: &str,
) -> Result<Vec<&'a str>, ClientError> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() != n {
        return Err(ClientError::Usage(format!(
            "--{flag} {value:?}: expected {shape}"
        )));
    }
    Ok(parts)
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ClientError> {
    value
        .parse()
        .map_err(|_| ClientError::Usage(format!("--{flag}: {value:?} is not a number")))
}

impl WhatIfArgs {
    /// The scenario these options describe, if any.
    pub fn scenario(&self) -> Result<Option<pb::Scenario>, ClientError> {
        use pb::scenario_change::Change;
        let mut changes = Vec::new();
        for o in &self.outages {
            let f = fields("outage", o, 3, "LOCATION:START_DAY:DAYS")?;
            changes.push(Change::LocationOutage(pb::LocationOutage {
                location_id: f[0].into(),
                start_day: number("outage", f[1])?,
                duration_days: number("outage", f[2])?,
            }));
        }
        for l in &self.lead_time_shocks {
            let f = fields("lead-time-shock", l, 2, "LOCATION:MULTIPLIER")?;
            changes.push(Change::LeadTimeShock(pb::LeadTimeShock {
                location_id: if f[0] == "*" {
                    String::new()
                } else {
                    f[0].into()
                },
                multiplier: number("lead-time-shock", f[1])?,
            }));
        }
        for g in &self.fleet_growth {
            let f = fields("fleet-growth", g, 3, "STORE:MODEL:MACHINES")?;
            changes.push(Change::FleetGrowth(pb::FleetGrowth {
                store_location_id: f[0].into(),
                machine_model_id: f[1].into(),
                additional_machines: number("fleet-growth", f[2])?,
            }));
        }
        if let Some(m) = self.demand_multiplier {
            changes.push(Change::DemandShock(pb::DemandShock {
                multiplier: m,
                ..Default::default()
            }));
        }
        if changes.is_empty() {
            return Ok(None);
        }
        Ok(Some(pb::Scenario {
            name: "what-if".into(),
            changes: changes
                .into_iter()
                .map(|c| pb::ScenarioChange { change: Some(c) })
                .collect(),
        }))
    }
}

/// `spares simulate [--csv DIR]`.
pub async fn simulate(
    server: &Target,
    settings: pb::SimulationSettings,
    what_if: &WhatIfArgs,
    json: bool,
    csv: Option<&Path>,
) -> Result<String, ClientError> {
    let scenarios = what_if.scenario()?.into_iter().collect();
    let mut clients = connect(server).await?;
    let job = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(settings),
            scenarios,
        })
        .await?
        .into_inner();
    eprintln!("started {} (seed {})", job.job_id, job.seed);
    let done = super::jobs::follow(&mut clients.planning, job).await?;
    let mut out = super::jobs::render(&done, json)?;
    if let Some(dir) = csv {
        out.push_str(&super::jobs::write_csv(&mut clients.planning, &done, dir).await?);
    }
    Ok(out)
}

fn local_time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.strftime("%a %Y-%m-%d %H:%MZ").to_string())
        .unwrap_or_default()
}

/// `spares where P [P2 ...] [--near L]`: one part with WhereIs, several with
/// one WhereIsBatch (every part read at one ledger sequence).
pub async fn where_is(
    server: &Target,
    parts: &[String],
    near: Option<&str>,
    limit: u32,
) -> Result<String, ClientError> {
    let request = |part_id: &str| pb::WhereIsRequest {
        part_id: part_id.into(),
        near_location_id: near.unwrap_or_default().into(),
        only_with_stock: true,
        max_locations: limit,
        ..Default::default()
    };
    let mut clients = connect(server.clone()).await?;
    if let [part_id] = parts {
        let answer = clients
            .availability
            .where_is(request(part_id))
            .await?
            .into_inner();
        return Ok(render_where_is(&answer, near.is_some()));
    }
    let batch = clients
        .availability
        .where_is_batch(pb::WhereIsBatchRequest {
            lines: parts.iter().map(|p| request(p)).collect(),
        })
        .await?
        .into_inner();
    let mut out = format!(
        "{} parts at ledger sequence {}\n",
        parts.len(),
        batch.ledger_sequence
    );
    for (part_id, line) in parts.iter().zip(&batch.lines) {
        out.push_str(&format!("\n== {part_id}\n"));
        out.push_str(&match &line.result {
            Some(pb::where_is_batch_line::Result::Answer(answer)) => {
                render_where_is(answer, near.is_some())
            }
            Some(pb::where_is_batch_line::Result::Error(e)) => line_error_text(e),
            None => "no answer\n".into(),
        });
    }
    Ok(out)
}

fn line_error_text(e: &pb::LineError) -> String {
    format!("error ({:?}): {}\n", tonic::Code::from(e.code), e.message)
}

fn render_where_is(answer: &pb::WhereIsResponse, near: bool) -> String {
    let mut table = Table::new(&[
        "part",
        "as",
        "location",
        "kind",
        "km",
        "on hand",
        "reserved",
        "available",
        "in transit",
    ]);
    for l in &answer.locations {
        let s = l.stock.clone().unwrap_or_default();
        let relation = pb::PartRelation::try_from(l.relation)
            .map(|r| {
                r.as_str_name()
                    .trim_start_matches("PART_RELATION_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        table.row(vec![
            s.part_id,
            relation,
            format!("{} {}", s.location_id, l.location_name),
            kind_name(l.location_kind).into(),
            if near {
                format!("{:.0}", l.distance_km)
            } else {
                String::new()
            },
            s.on_hand.to_string(),
            s.reserved.to_string(),
            s.available.to_string(),
            s.in_transit.to_string(),
        ]);
    }
    let mut out = format!("part numbers considered: {}\n", answer.part_ids.join(", "));
    out.push_str(&if table.is_empty() {
        "no stock on hand or inbound anywhere\n".into()
    } else {
        table.render()
    });
    out
}

/// Parses a need-by instant: RFC 3339 with offset, or a zoned local date-time.
pub fn parse_instant(text: &str) -> Result<prost_types::Timestamp, ClientError> {
    let ts = text
        .parse::<jiff::Timestamp>()
        .or_else(|_| text.parse::<jiff::Zoned>().map(|z| z.timestamp()))
        .map_err(|e| ClientError::Usage(format!("--need-by {text:?}: {e}")))?;
    Ok(prost_types::Timestamp {
        seconds: ts.as_second(),
        nanos: ts.subsec_nanosecond(),
    })
}

/// What every line of `spares promise` shares: destination, need-by,
/// priority and mode.
#[derive(Debug, Clone)]
pub struct PromiseAsk {
    /// Destination location.
    pub to: String,
    /// Need-by (see [`super::operations::resolve_need_by`]).
    pub need_by: Option<String>,
    /// Machine-down demand.
    pub critical: bool,
    /// The customer collects at the destination.
    pub pickup: bool,
}

/// Most lines `spares promise --lines` reads: the server's batch limit.
const MAX_CLI_LINES: usize = crate::domain::promise::MAX_BATCH_LINES;

/// The (part, quantity) lines of `spares promise`: the positional pair, the
/// `--line PART:QTY` values, then the rows of the `--lines` CSV file
/// (`part,quantity`; a first row whose quantity is not a number is a header).
pub fn promise_lines(
    part: Option<String>,
    quantity: Option<u64>,
    line: &[String],
    file: Option<&std::path::Path>,
) -> Result<Vec<(String, u64)>, ClientError> {
    let mut lines = Vec::new();
    if let (Some(part), Some(quantity)) = (part, quantity) {
        lines.push((part, quantity));
    }
    for text in line {
        let (part, quantity) = text
            .split_once(':')
            .ok_or_else(|| ClientError::Usage(format!("--line {text:?}: expected PART:QTY")))?;
        let quantity = quantity
            .trim()
            .parse()
            .map_err(|e| ClientError::Usage(format!("--line {text:?}: quantity: {e}")))?;
        lines.push((part.trim().to_string(), quantity));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("--lines {}: {e}", path.display())))?;
        for (row, record) in text.lines().enumerate() {
            if record.trim().is_empty() {
                continue;
            }
            let at = || format!("--lines {} row {}", path.display(), row + 1);
            let (part, quantity) = record
                .split_once(',')
                .ok_or_else(|| ClientError::Usage(format!("{}: expected part,quantity", at())))?;
            match quantity.trim().parse() {
                Ok(quantity) => lines.push((part.trim().to_string(), quantity)),
                Err(_) if row == 0 => {} // a header
                Err(e) => return Err(ClientError::Usage(format!("{}: quantity: {e}", at()))),
            }
            if lines.len() > MAX_CLI_LINES {
                return Err(ClientError::Usage(format!(
                    "{}: more than {MAX_CLI_LINES} lines; split the file",
                    at()
                )));
            }
        }
    }
    if lines.is_empty() {
        return Err(ClientError::Usage("no lines to promise".into()));
    }
    Ok(lines)
}

/// `spares promise P QTY --to L`, or many lines with one PromiseBatch call
/// (every line read at one ledger sequence).
pub async fn promise(
    server: &Target,
    lines: &[(String, u64)],
    ask: &PromiseAsk,
) -> Result<String, ClientError> {
    let need_by = match ask.need_by.as_deref() {
        Some(text) => Some(super::operations::to_pb(
            super::operations::resolve_need_by(server, text, &ask.to).await?,
        )),
        None => None,
    };
    let request = |part_id: &str, quantity: u64| pb::PromiseRequest {
        part_id: part_id.into(),
        quantity,
        destination_location_id: ask.to.clone(),
        need_by,
        mode: (if ask.pickup {
            pb::FulfilmentMode::Pickup
        } else {
            pb::FulfilmentMode::Delivery
        }) as i32,
        priority: (if ask.critical {
            pb::Priority::Critical
        } else {
            pb::Priority::Routine
        }) as i32,
        ..Default::default()
    };
    let mut clients = connect(server.clone()).await?;
    if let [(part_id, quantity)] = lines {
        let answer = clients
            .availability
            .promise(request(part_id, *quantity))
            .await?
            .into_inner();
        return Ok(render_promise(&answer));
    }
    let batch = clients
        .availability
        .promise_batch(pb::PromiseBatchRequest {
            lines: lines.iter().map(|(p, q)| request(p, *q)).collect(),
        })
        .await?
        .into_inner();
    let mut out = format!(
        "{} lines to {} at ledger sequence {}\n",
        lines.len(),
        ask.to,
        batch.ledger_sequence
    );
    for (i, ((part_id, quantity), line)) in lines.iter().zip(&batch.lines).enumerate() {
        out.push_str(&format!("\n== line {}: {part_id} x{quantity}\n", i + 1));
        out.push_str(&match &line.result {
            Some(pb::promise_batch_line::Result::Answer(answer)) => render_promise(answer),
            Some(pb::promise_batch_line::Result::Error(e)) => line_error_text(e),
            None => "no answer\n".into(),
        });
    }
    Ok(out)
}

fn render_promise(answer: &pb::PromiseResponse) -> String {
    let mut out = String::new();
    if answer.options.is_empty() {
        let reason = pb::NoPromiseReason::try_from(answer.reason)
            .map(|r| {
                r.as_str_name()
                    .trim_start_matches("NO_PROMISE_REASON_")
                    .to_lowercase()
                    .replace('_', " ")
            })
            .unwrap_or_default();
        return format!("no promise: {reason}. {}\n", answer.reason_detail);
    }
    let mut table = Table::new(&[
        "#",
        "available at (UTC)",
        "next bus. day",
        "meets need-by",
        "P(by need-by)",
        "cost",
        "sources",
    ]);
    for (i, o) in answer.options.iter().enumerate() {
        let sources = o
            .sources
            .iter()
            .map(|s| {
                let route: Vec<&str> = s.legs.iter().map(|l| l.to_location_id.as_str()).collect();
                let inbound = if s.inbound_shipment_id.is_empty() {
                    String::new()
                } else {
                    format!(" (inbound {})", s.inbound_shipment_id)
                };
                format!(
                    "{} x{} from {}{inbound}{}",
                    s.part_id,
                    s.quantity,
                    s.location_id,
                    if route.is_empty() {
                        String::new()
                    } else {
                        format!(" -> {}", route.join(" -> "))
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        table.row(vec![
            (i + 1).to_string(),
            local_time(o.promised_at.as_ref()),
            if o.next_business_day { "yes" } else { "no" }.into(),
            if o.meets_need_by { "yes" } else { "no" }.into(),
            format!("{:.1}%", o.probability_by_need_by * 100.0),
            format!("${:.2}", o.cost_usd),
            sources,
        ]);
    }
    out.push_str(&table.render());
    if !answer.reason_detail.is_empty() {
        out.push_str(&format!("note: {}\n", answer.reason_detail));
    }
    out
}

/// Parses `FROM:TO:MODE:KIND` (e.g. `DEP-ROT:RWH-FRA:road:emergency`).
fn lane_key(text: &str) -> Result<pb::LaneKey, ClientError> {
    let usage = || ClientError::Usage(format!("--lane {text:?}: expected FROM:TO:MODE:KIND"));
    let [from, to, mode, kind] = text.split(':').collect::<Vec<_>>()[..] else {
        return Err(usage());
    };
    let mode = pb::TransportMode::from_str_name(&format!("TRANSPORT_MODE_{}", mode.to_uppercase()))
        .ok_or_else(usage)?;
    let kind = pb::LaneKind::from_str_name(&format!("LANE_KIND_{}", kind.to_uppercase()))
        .ok_or_else(usage)?;
    Ok(pb::LaneKey {
        from_location_id: from.into(),
        to_location_id: to.into(),
        mode: mode as i32,
        kind: kind as i32,
    })
}

/// Retires parts, locations and lanes; prints what was retired.
pub async fn retire(
    server: &Target,
    part_ids: Vec<String>,
    location_ids: Vec<String>,
    lanes: &[String],
) -> Result<String, ClientError> {
    let lanes = lanes
        .iter()
        .map(|l| lane_key(l))
        .collect::<Result<Vec<_>, _>>()?;
    let mut clients = connect(server).await?;
    let r = clients
        .network
        .retire(pb::RetireRequest {
            part_ids,
            location_ids,
            lanes,
        })
        .await?
        .into_inner();
    let lanes: Vec<String> = r
        .lanes
        .iter()
        .map(|l| {
            let mode = pb::TransportMode::try_from(l.mode).map_or("?", |m| m.as_str_name());
            let kind = pb::LaneKind::try_from(l.kind).map_or("?", |k| k.as_str_name());
            format!(
                "{} -> {} {} {}",
                l.from_location_id,
                l.to_location_id,
                mode.trim_start_matches("TRANSPORT_MODE_").to_lowercase(),
                kind.trim_start_matches("LANE_KIND_").to_lowercase()
            )
        })
        .collect();
    Ok(format!(
        "retired {} parts, {} locations, {} lanes\n{}",
        r.part_ids.len(),
        r.location_ids.len(),
        lanes.len(),
        r.part_ids
            .iter()
            .chain(&r.location_ids)
            .chain(&lanes)
            .map(|x| format!("  {x}\n"))
            .collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn a_server_without_a_scheme_is_plain_http() {
        assert_eq!(server_url("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(server_url(" localhost:1 "), "http://localhost:1");
        assert_eq!(server_url("http://h:1"), "http://h:1");
        assert_eq!(server_url("https://h:1"), "https://h:1");
    }
}
