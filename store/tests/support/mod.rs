//! What the store's integration tests share.

use faultline_schema::Uuid;
use sqlx::Connection;

/// A new, empty database on the test cluster; its URL.
pub(crate) async fn fresh_db() -> String {
    let base = std::env::var("FAULTLINE_TEST_DATABASE_URL").expect(
        "FAULTLINE_TEST_DATABASE_URL is not set: `cargo xtask test` starts a throwaway \
         PostgreSQL and sets it; to run these tests by hand, point it at a superuser URL",
    );
    let name = format!("t_{}", Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}
