//! The single writer of money: every national write transaction is queued here and committed in
//! groups — one database transaction (one fsync) for all the jobs waiting; a refused job leaves no
//! trace and does not disturb the others.
//!
//! Why a single task: settlements of one person must run in order against the latest accumulators;
//! with one writer per process that holds by construction, and the row lock taken by
//! `ledger::lock_accumulators` (FOR UPDATE on PostgreSQL, the database write lock on SQLite) keeps it
//! true across processes. Group commit is what makes durable commits fast: a commit costs an fsync,
//! and the jobs that arrive during one fsync share the next.

use std::sync::Arc;
use std::time::Duration;

use baozhang_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::national::{self, NatError, PreparedSettle, RespondCtx};
use crate::Policies;

/// What a write does (validated and prepared before it is queued).
#[derive(Debug)]
pub enum WriteOp {
    SignIn {
        sign_no: String,
        opter: String,
        expires_at: i64,
    },
    /// 9002: the sign-in ends.
    SignOut {
        sign_no: String,
    },
    /// A visit and its main diagnosis (ICD-10 code and name) when the admission names one.
    Register(Box<baozhang_store::service::Mdtrt>, Option<national::visits::Diagnosis>),
    /// A visit's change after registration (2202/2404, 2203/2403, 2402, 2405).
    Visit(national::visits::VisitOp),
    FeeUpload {
        visit: national::visits::VisitRef,
        /// Classified lines (by the catalogue, or as the hospital stated them).
        lines: Vec<baozhang_store::service::FeeLine>,
        /// Lines the visit may hold in all (`Config::max_fee_lines_per_visit`).
        max_per_visit: usize,
    },
    /// 2205 / 2302.
    FeeCancel(national::fees::FeeCancel),
    /// Only the job's nonce is recorded (a read's signature, committed before the read is answered).
    Nonce,
    Settle(Box<PreparedSettle>),
    /// 2208 / 2305.
    Cancel(national::settle::SettleRef),
    /// 2601.
    Reverse(Box<(national::reversal::Reversal, national::reversal::ReverseOp)>),
    /// 3202, 9101, 4101A.
    Statement(national::stmt::StmtOp),
    /// 2501 / 2502.
    Filing(national::filing::FilingOp),
    /// Re-settles person-years of a run (`crate::resettle`).
    Resettle {
        run: baozhang_store::resettle::RunCtx,
        year: u16,
        psns: Vec<String>,
    },
}

#[derive(Debug)]
pub struct Job {
    /// The message's key in `msg_log` (`national::msg_key`: institution and msgid).
    pub msgid: String,
    /// The request's nonce, recorded in the job's transaction (none for the workbench's own calls).
    pub nonce: Option<national::NonceUse>,
    pub fixmedins_code: String,
    pub infno: String,
    pub opter: String,
    pub body_sha256: String,
    pub ctx: RespondCtx,
    pub op: WriteOp,
}

/// Why a job did not commit.
#[derive(Debug)]
pub enum ExecError {
    /// Refused for a reason the caller must fix (before the job wrote anything); the batch goes on.
    Refused(NatError),
    /// The database failed; the whole batch is rolled back and retried.
    Db(StoreError),
}

impl From<StoreError> for ExecError {
    fn from(e: StoreError) -> ExecError {
        ExecError::Db(e)
    }
}

impl From<sqlx::Error> for ExecError {
    fn from(e: sqlx::Error) -> ExecError {
        ExecError::Db(StoreError::Db(e))
    }
}

type Reply = Result<String, NatError>;

enum Msg {
    Job(Box<Job>, oneshot::Sender<Reply>),
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    stats: Arc<Stats>,
}

/// Counters of the writer (for the benchmark and `/healthz`).
#[derive(Default, Debug)]
pub struct Stats {
    pub commits: std::sync::atomic::AtomicU64,
    pub jobs: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
    /// Time spent committing batches (µs): busy ÷ wall time is the writer's utilisation.
    pub busy_us: std::sync::atomic::AtomicU64,
    /// Jobs refused because they panicked (an invariant assertion of the engine, say).
    pub panics: std::sync::atomic::AtomicU64,
    /// Set when the writer has stopped (closed, or died): `/healthz` then reports it.
    pub stopped: std::sync::atomic::AtomicBool,
}

/// Jobs waiting beyond this make callers wait to enqueue (back-pressure instead of unbounded memory).
const QUEUE: usize = 4096;
/// Retries of a batch after a transient database failure (lock timeout, serialization, deadlock).
const MAX_RETRIES: u32 = 6;

pub fn spawn(store: Store, policies: Arc<Policies>, max_batch: usize, fault: Option<String>) -> WriterHandle {
    let (tx, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(Stats::default());
    // The writer gets its own thread and runtime: on a small machine its many short database round trips
    // would otherwise queue behind the HTTP tasks on the shared runtime, and every settlement waits for
    // the writer. (Measured on 2 cores: the shared runtime left the writer ~98 % busy mostly waiting.)
    let st = stats.clone();
    std::thread::Builder::new()
        .name("bz-writer".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("writer runtime");
            let alive = st.clone();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(run(store, policies, rx, max_batch.max(1), st, fault.as_deref()))
            }));
            if r.is_err() {
                tracing::error!("the writer stopped after a panic outside a job; settlements are refused until a restart");
            }
            alive.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .expect("spawn the writer thread");
    WriterHandle { tx, stats }
}

impl WriterHandle {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the writer still takes jobs.
    pub fn alive(&self) -> bool {
        !self.stats.stopped.load(std::sync::atomic::Ordering::SeqCst) && !self.tx.is_closed()
    }

    /// Writes queued now.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub async fn submit(&self, job: Job) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Job(Box::new(job), reply)).await.is_err() {
            return Err(NatError::Internal("结算服务正在停止，请稍后重试".into()));
        }
        rx.await.unwrap_or_else(|_| Err(NatError::Internal("结算服务内部错误，请用同一报文编号重试".into())))
    }

    /// Commits everything queued, then stops the writer.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(store: Store, policies: Arc<Policies>, mut rx: mpsc::Receiver<Msg>, max_batch: usize, stats: Arc<Stats>, fault: Option<&str>) {
    let mut batch: Vec<(Job, oneshot::Sender<Reply>)> = Vec::with_capacity(max_batch);
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        match rx.recv().await {
            Some(Msg::Job(j, r)) => batch.push((*j, r)),
            Some(Msg::Close(done)) => closing = Some(done),
            None => break,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Job(j, r)) => batch.push((*j, r)),
                Ok(Msg::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            run_batch(&store, &policies, &mut batch, &stats, fault).await;
        }
    }
    // Closing: what is still queued is committed before we stop.
    rx.close();
    while let Some(m) = rx.recv().await {
        if let Msg::Job(j, r) = m {
            batch.push((*j, r));
            if batch.len() >= max_batch {
                run_batch(&store, &policies, &mut batch, &stats, fault).await;
            }
        }
    }
    if !batch.is_empty() {
        run_batch(&store, &policies, &mut batch, &stats, fault).await;
    }
    tracing::info!("writer stopped");
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Database(d)) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            let msg = d.message();
            // PostgreSQL: serialization failure, deadlock, unique violation (a racing writer took the
            // same seq or msgid — the retry sees its row). SQLite: busy / locked.
            matches!(code.as_str(), "40001" | "40P01" | "23505" | "5" | "6" | "517" | "261" | "2067" | "1555")
                || msg.contains("database is locked")
                || msg.contains("UNIQUE constraint failed")
        }
        StoreError::Db(sqlx::Error::PoolTimedOut) | StoreError::Db(sqlx::Error::Io(_)) | StoreError::Conflict(_) => true,
        _ => false,
    }
}

/// Commits `batch` (emptying it) and answers every job.
async fn run_batch(store: &Store, policies: &Policies, batch: &mut Vec<(Job, oneshot::Sender<Reply>)>, stats: &Stats, fault: Option<&str>) {
    let mut attempt = 0;
    let started = std::time::Instant::now();
    loop {
        let r = try_batch(store, policies, batch, fault).await;
        stats.busy_us.fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        let r = match r {
            Err(BatchError::Panicked(i)) => {
                // The transaction was dropped (rolled back) with the panic: nothing of the batch is
                // written. The job that panicked is refused; the others are tried again without it.
                stats.panics.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (job, reply) = batch.remove(i);
                tracing::error!(msgid = %job.msgid, infno = %job.infno, fixmedins = %job.fixmedins_code, "a write job panicked; refused, the others go on");
                let _ = reply.send(Err(NatError::Refused("该笔业务触发系统校验异常，已拒绝且未记账；请联系医保经办机构核查".into())));
                if batch.is_empty() {
                    return;
                }
                continue;
            }
            Err(BatchError::Db(e)) => Err(e),
            Ok(v) => Ok(v),
        };
        match r {
            Ok(replies) => {
                stats.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                stats.jobs.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                for ((_, reply), r) in batch.drain(..).zip(replies) {
                    let _ = reply.send(r);
                }
                return;
            }
            Err(e) if retryable(&e) && attempt < MAX_RETRIES => {
                attempt += 1;
                stats.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(attempt, error = %e, jobs = batch.len(), "write batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(2u64 << attempt)).await;
            }
            Err(e) if batch.len() > 1 => {
                // Isolate the job that fails: commit them one by one.
                tracing::warn!(error = %e, jobs = batch.len(), "write batch failed; committing its jobs one by one");
                for one in std::mem::take(batch) {
                    let mut single = vec![one];
                    Box::pin(run_batch(store, policies, &mut single, stats, fault)).await;
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "write failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(NatError::Internal("系统暂时无法处理，请稍后用同一报文编号重试".into())));
                }
                return;
            }
        }
    }
}

enum BatchError {
    Db(StoreError),
    /// The job at this index panicked.
    Panicked(usize),
}

impl From<StoreError> for BatchError {
    fn from(e: StoreError) -> BatchError {
        BatchError::Db(e)
    }
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> BatchError {
        BatchError::Db(StoreError::Db(e))
    }
}

async fn try_batch(
    store: &Store,
    policies: &Policies,
    batch: &[(Job, oneshot::Sender<Reply>)],
    fault: Option<&str>,
) -> Result<Vec<Reply>, BatchError> {
    use futures_util::FutureExt;
    let backend = store.backend();
    let mut tx = store.begin_write().await?;
    let mut replies = Vec::with_capacity(batch.len());
    // No savepoints: a job refuses before it writes anything that matters (its only earlier write is
    // the empty accumulator row of `lock_accumulators`, which `ledger verify` ignores), so a refused job
    // needs no rollback and the others commit with it. A database error rolls the whole batch back.
    let mut pending = baozhang_store::ledger::Batch::default();
    let msgids: Vec<&str> = batch.iter().map(|(j, _)| j.msgid.as_str()).collect();
    pending.prefetch_msgs(&mut tx, &msgids).await?;
    let nonces: Vec<(&str, &str)> =
        batch.iter().filter_map(|(j, _)| j.nonce.as_ref().map(|n| (n.key.as_str(), n.nonce.as_str()))).collect();
    if !nonces.is_empty() {
        pending.prefetch_nonces(&mut tx, &nonces).await?;
    }
    // Read the visits and lock the person-years of the batch's settlements up front, in two statements
    // instead of two per settlement.
    let mut visits: Vec<&str> = Vec::new();
    let mut keys: Vec<(String, u16)> = Vec::new();
    for (job, _) in batch {
        if let WriteOp::Settle(p) = &job.op {
            visits.push(&p.mdtrt.mdtrt_id);
            keys.push((p.psn_no.clone(), p.setl_date.year()));
        }
    }
    if !visits.is_empty() {
        // Lock first: on PostgreSQL the visits are then read after any settlement of the same person
        // by another process has committed.
        baozhang_store::ledger::lock_many(&mut tx, &mut pending, &keys).await?;
        pending.prefetch_visits(&mut tx, &visits).await?;
    }
    for (i, (job, _)) in batch.iter().enumerate() {
        let injected = fault.is_some_and(|f| !f.is_empty() && job.msgid.ends_with(f));
        let work = async {
            if injected {
                panic!("fault injected for msgid {}", job.msgid);
            }
            national::execute(&mut tx, &mut pending, backend, policies, job).await
        };
        let run = std::panic::AssertUnwindSafe(work).catch_unwind().await;
        match run {
            Ok(Ok(text)) => replies.push(Ok(text)),
            Ok(Err(ExecError::Refused(e))) => replies.push(Err(e)),
            Ok(Err(ExecError::Db(e))) => return Err(BatchError::Db(e)),
            Err(_) => return Err(BatchError::Panicked(i)),
        }
    }
    pending.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(replies)
}
