//! A loader that POSTs encoded OTLP/HTTP protobuf requests, for the
//! benchmarks that seed a backend (`ingest`, `query_bench`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// POSTs every body, `concurrency` at a time, retrying a refused one after
/// a pause, until all are acknowledged (a 200 means committed).
pub async fn post_all(
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> Result<(), reqwest::Error> {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, bodies, next) =
                (client.clone(), url.to_owned(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return Ok::<_, reqwest::Error>(());
                    };
                    while !client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await?
                        .status()
                        .is_success()
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        match worker.await {
            Ok(result) => result?,
            Err(join) => panic!("loader task failed: {join}"),
        }
    }
    Ok(())
}
