//! Connections to PostgreSQL: where the database is (its connection string, named without the
//! password, and whether TLS is required: always off loopback), the connection itself with its
//! cache of prepared statements, and the [`Conn`] the shared statements run on, outside or
//! inside a write transaction.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use postgres::config::{Host, SslMode};
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, GenericClient, Statement};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::PostgresOptions;
use crate::store::StoreError;
use crate::store::sql::{Conn, Dialect, Row, Value, postgres_placeholders};

/// Where the database is and how to reach it.
pub(super) struct Target {
    config: postgres::Config,
    /// `postgres://user@host:port/db`, never with the password.
    name: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    pub(super) fn parse(options: &PostgresOptions) -> Result<Target, StoreError> {
        let (mut config, name, needs_tls) = Target::parse_config(options)?;
        let tls = if needs_tls {
            config.ssl_mode(SslMode::Require);
            let settings = roomready_connect::broker::BrokerTls {
                ca_file: options.ca_file.clone(),
                server_name: None,
                client_cert: None,
            };
            Some(
                roomready_connect::tls::client_config(&settings)
                    .map_err(|e| StoreError::Open(format!("database_ca_file: {e}")))?,
            )
        } else {
            config.ssl_mode(SslMode::Disable);
            None
        };
        Ok(Target { config, name, tls })
    }

    /// The driver's config, the database's name (without the password) and whether TLS is
    /// required.
    pub(super) fn parse_config(
        options: &PostgresOptions,
    ) -> Result<(postgres::Config, String, bool), StoreError> {
        let mut config = postgres::Config::from_str(&options.url).map_err(|e| {
            // The parser's message may quote the string, password and all: name only the kind.
            let kind = e.source().map_or_else(|| e.to_string(), |s| s.to_string());
            StoreError::Open(format!(
                "database: not a PostgreSQL connection string ({}): use \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
                kind.split(':').next().unwrap_or("invalid")
            ))
        })?;
        let hosts = config.get_hosts();
        if hosts.is_empty() {
            return Err(StoreError::Open(
                "database: the PostgreSQL connection string names no host".into(),
            ));
        }
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host_names: Vec<String> = hosts
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let name = format!(
            "postgres://{}@{}:{port}/{}",
            config.get_user().unwrap_or(""),
            host_names.join(","),
            config.get_dbname().unwrap_or("")
        );
        let local = hosts.iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost" || IpAddr::from_str(name).is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        });
        // On this machine TLS only when asked for (sslmode=require); off it, always.
        let needs_tls = !local || config.get_ssl_mode() == SslMode::Require;
        if !local && config.get_ssl_mode() == SslMode::Disable {
            return Err(StoreError::Open(format!(
                "database {name}: sslmode=disable is refused for a database that is not on this \
                 machine: the fleet's data and the password would cross the network in clear"
            )));
        }
        if let Some(password) = &options.password {
            config.password(password.as_str());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("roomready-controller");
        Ok((config, name, needs_tls))
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn connect(&self) -> Result<Connection, StoreError> {
        let client = match &self.tls {
            None => self.config.connect(postgres::NoTls),
            Some(tls) => self.config.connect(RustlsConnect(Arc::clone(tls))),
        }
        .map_err(|e| {
            StoreError::Open(format!(
                "cannot connect to database {}: {}",
                self.name,
                full(&e)
            ))
        })?;
        Ok(Connection {
            client,
            statements: HashMap::new(),
        })
    }
}

/// An error with its causes (the driver's own message is often only "db error").
pub(super) fn full(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    if let Some(db) = e.as_db_error() {
        text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
    } else {
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
    }
    text
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::Database(full(&e))
}

/// A connection and its prepared statements (by the SQL they were made from).
pub(super) struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Connection {
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Whether the server still answers (a round trip).
    pub(super) fn is_valid(&mut self) -> bool {
        self.client.is_valid(Duration::from_secs(5)).is_ok()
    }

    /// The connection as it is: each statement commits by itself.
    pub(super) fn plain(&mut self) -> PgConn<'_, Client> {
        PgConn {
            client: &mut self.client,
            statements: &mut self.statements,
        }
    }

    /// Runs `f` in a transaction holding the advisory lock `lock` until it ends; commits when
    /// `f` returns `Ok`, rolls back otherwise.
    pub(super) fn transaction<T>(
        &mut self,
        lock: i64,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self.client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
            .map_err(db)?;
        let value = f(&mut PgConn {
            client: &mut tx,
            statements: &mut self.statements,
        })?;
        tx.commit().map_err(db)?;
        Ok(value)
    }

    pub(super) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(db)
    }
}

/// Prepared statements kept per connection.
const MAX_STATEMENTS: usize = 256;

/// A client or a transaction running the shared statements.
pub(super) struct PgConn<'a, C: GenericClient> {
    client: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
}

impl<C: GenericClient> PgConn<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        if self.statements.len() >= MAX_STATEMENTS {
            // Dynamic queries (filters, sorts) make many shapes over time: start afresh.
            self.statements.clear();
        }
        let statement = self
            .client
            .prepare(&postgres_placeholders(sql))
            .map_err(|e| StoreError::Database(format!("{} in {sql}", full(&e))))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn params(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient> Conn for PgConn<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, &params(args)).map_err(db)
    }

    fn rows(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let rows = self.client.query(&statement, &params(args)).map_err(db)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Value>(i).map_err(db))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }
}

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be passed as {ty}").into()),
            },
            Value::Text(t) => match *ty {
                Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
                _ => t.as_str().to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL)
            || <String as FromSql>::accepts(ty)
    }
}

/// TLS to PostgreSQL through the workspace's rustls (ring), verifying the server's certificate
/// and name.
#[derive(Clone)]
struct RustlsConnect(Arc<rustls::ClientConfig>);

struct RustlsConnector {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnector;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnector, Self::Error> {
        Ok(RustlsConnector {
            config: Arc::clone(&self.0),
            name: rustls::pki_types::ServerName::try_from(domain.to_owned())?,
        })
    }
}

impl<S> TlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            Ok(RustlsStream(connector.connect(self.name, stream).await?))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
