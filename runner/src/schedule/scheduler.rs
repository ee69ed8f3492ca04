//! The long-running scheduler: one leader at a time fires each drill as a Job at its instant, and
//! keeps the run history in step with what the Jobs did.
//!
//! Each tick: take or keep the Lease; backfill records executors left in the cluster; record Jobs
//! that finished, failed or vanished; then, unless the kill switch is engaged, fire what is due.
//! A fire is identified by (drill, scheduled instant): its Job name derives from it, so a second
//! leader or a restarted one can never start the same fire twice.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::cluster::job::{self, RunRef, Runtime};
use crate::cluster::kubernetes::{job_state, Created, JobPhase, Kube, KubeError};
use crate::config::Config;
use crate::history::store::{FireRecord, Store};
use crate::run::{Measurements, RunRecord, RunStatus};
use crate::schedule::{self, notify, Fire, FireStatus};

/// What one tick did, for logs, metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub leader: bool,
    pub kill_switch: Option<String>,
    /// Jobs created (run ids).
    pub fired: Vec<String>,
    /// (drill, scheduled, status) of fires recorded without a Job: skipped or missed.
    pub not_fired: Vec<(String, DateTime<Utc>, String)>,
    /// (run, status) of runs whose record this tick wrote or completed.
    pub recorded: Vec<(String, RunStatus)>,
    /// Ledgers this tick reverted because their run could not (its Job is gone, or they expired).
    pub reverted: Vec<String>,
    /// Runs whose failed revert's ledger this tick found closed, and recorded so.
    pub rollbacks_closed: Vec<String>,
    /// Fires this tick looked at: the ones due since the last tick (all since the store's last
    /// handled instant, less `HORIZON`, at a leadership's first), and the ones still waiting for
    /// their start or a slot. What a tick costs follows this.
    pub considered: usize,
}

/// How often the leader sweeps for orphaned ledgers and expired artifacts (and at its first tick).
pub const SWEEP_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How long a leader holds the Lease without renewing it.
pub const LEASE_SECONDS: i32 = 15;

/// How long an announcement waits for the cluster read it judges its picks on.
const PICKS_BUDGET: Duration = Duration::from_secs(5);

pub struct Scheduler {
    pub config: Config,
    config_path: Option<PathBuf>,
    config_text: Option<String>,
    kube: Kube,
    store: Store,
    runtime: Runtime,
    /// Leader election, shared with the renewer the run loop spawns.
    elector: Arc<tokio::sync::Mutex<crate::cluster::kubernetes::Elector>>,
    last_sweep: Option<DateTime<Utc>>,
    /// The calendar this leader fires from, kept between ticks (see [`Cursor`]).
    cursor: Option<Cursor>,
    /// The cluster the store records fires under (it was opened for the drill file's).
    store_cluster: String,
    /// `/metrics`: the registry and the scheduler's families in it.
    pub metrics: crate::history::metrics::Exposition,
    /// Posts announcements, starts and outcomes to the drills' receivers.
    notifier: notify::Notifier,
    /// Fires announced (drill, scheduled), with their start: kept until they start.
    announced: BTreeMap<(String, DateTime<Utc>), DateTime<Utc>>,
    /// Runs seen running: when the history shows one ended, its outcome is posted. Held in
    /// memory, so a run that ends while no scheduler leads has no outcome posted.
    watching: std::sync::Mutex<HashSet<String>>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Scheduler {
    pub fn new(
        config: Config,
        kube: Kube,
        store: Store,
        runtime: Runtime,
        identity: impl Into<String>,
    ) -> Self {
        let metrics = crate::history::metrics::Exposition::for_cluster(&config.cluster);
        let notifier = notify::Notifier::spawn(
            notify::process_env(),
            metrics.scheduler.clone(),
            notify::Posting::default(),
        );
        Scheduler {
            notifier,
            announced: BTreeMap::new(),
            watching: std::sync::Mutex::default(),
            store_cluster: config.cluster.clone(),
            cursor: None,
            config_path: Some(config.source.clone()).filter(|p| p.exists()),
            config_text: std::fs::read_to_string(&config.source).ok(),
            config,
            kube,
            store,
            runtime,
            elector: Arc::new(tokio::sync::Mutex::new(
                crate::cluster::kubernetes::Elector::new(identity, LEASE_SECONDS),
            )),
            last_sweep: None,
            metrics,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Posts notices with `notifier` (another environment, other budgets) from now on.
    pub fn set_notifier(&mut self, notifier: notify::Notifier) {
        self.notifier = notifier;
    }

    /// One renewal of the leader Lease at `now` (what the renewer does every third of the lease).
    pub async fn renew(&self, now: DateTime<Utc>) -> Result<bool, SchedulerError> {
        Ok(self.elector.lock().await.renew(&self.kube, now).await?)
    }

    /// Whether this scheduler leads at `now`.
    pub async fn leading(&self, now: DateTime<Utc>) -> bool {
        self.elector.lock().await.leading(now)
    }

    /// Renews the leader Lease every third of the lease until `stop`, whatever the ticks do
    /// (a tick may take minutes, or be configured at 300 s): leadership never lapses between
    /// ticks, and a scheduler that stops renewing loses it within one lease. On stop, the Lease
    /// is released so that another scheduler takes over at once.
    pub fn renewer(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let (elector, kube) = (self.elector.clone(), self.kube.clone());
        let gauge = self.metrics.scheduler.leader.clone();
        tokio::spawn(async move {
            let every = elector.lock().await.every();
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.changed() => break,
                }
                let mut e = elector.lock().await;
                let now = Utc::now();
                if let Err(error) = e.renew(&kube, now).await {
                    tracing::warn!(%error, "cannot renew the leader Lease; leadership lapses at the end of the lease");
                }
                gauge.set(i64::from(e.leading(now)));
            }
            // Never leading again, before the Lease goes: no tick can take it back.
            let identity = {
                let mut e = elector.lock().await;
                e.resign();
                e.identity().to_owned()
            };
            gauge.set(0);
            match kube.release(&identity).await {
                Ok(true) => tracing::info!("leader Lease released"),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot release the leader Lease"),
            }
        })
    }

    /// Picks up a changed drill file (a ConfigMap update swaps the mounted file). An invalid file
    /// is rejected with its diagnostics; the scheduler keeps the last good one.
    pub fn reload(&mut self) -> Option<bool> {
        let path = self.config_path.clone()?;
        let text = std::fs::read_to_string(&path).ok()?;
        if self.config_text.as_deref() == Some(text.as_str()) {
            return None;
        }
        self.config_text = Some(text.clone());
        match Config::parse(&text, &path) {
            Ok(mut config) => {
                config.settle_paths(
                    std::env::var_os("FIREDRILL_DATA_DIR")
                        .filter(|d| !d.is_empty())
                        .map(Into::into),
                );
                if config.namespace != self.config.namespace {
                    tracing::warn!(from = %self.config.namespace, to = %config.namespace, "a new namespace takes effect at the next restart");
                }
                tracing::info!(path = %path.display(), drills = config.drills.len(), "drill file reloaded");
                for error in notify::check_addresses(&config, &notify::process_env()) {
                    tracing::error!(%error, "a notify receiver of the reloaded drill file is sent nothing");
                }
                self.config = config;
                self.metrics
                    .scheduler
                    .reload(crate::history::metrics::ReloadResult::applied);
                Some(true)
            }
            Err(diagnostics) => {
                tracing::error!(path = %path.display(), problems = %diagnostics, "drill file rejected; keeping the previous one");
                self.metrics
                    .scheduler
                    .reload(crate::history::metrics::ReloadResult::rejected);
                Some(false)
            }
        }
    }

    /// One pass of the loop at instant `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport, SchedulerError> {
        // Leadership is renewed by the renewer on its own cadence; a tick renews only when a
        // renewal is due (a scheduler driven by ticks alone, as in tests).
        let leader = {
            let mut elector = self.elector.lock().await;
            if elector.due(now) || !elector.leading(now) {
                // A failed renewal does not end a leadership still held: the tick goes on.
                match elector.renew(&self.kube, now).await {
                    Ok(leads) => leads,
                    Err(e) if elector.leading(now) => {
                        tracing::warn!(error = %e, "cannot renew the leader Lease; still leading");
                        true
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                elector.leading(now)
            }
        };
        let mut report = TickReport {
            leader,
            ..TickReport::default()
        };
        self.metrics.scheduler.leader.set(i64::from(report.leader));
        if !report.leader {
            // Another leader may handle fires meanwhile: a new term starts from the store.
            self.cursor = None;
            // A follower is healthy when it can talk to the API server and wait for the Lease.
            self.metrics.scheduler.ticked(now);
            return Ok(report);
        }
        // The sweep first: reverting what runs left behind needs only the cluster, and must
        // not wait for a store that is down (recording the ledgers it finds closed does).
        if self.last_sweep.is_none_or(|last| now - last >= SWEEP_EVERY) {
            self.sweep(now, &mut report).await?;
            self.last_sweep = Some(now);
        }
        self.reconcile(now, &mut report).await?;

        report.kill_switch = match self.kube.kill_switch().await {
            Ok(switch) => switch,
            Err(e) => Some(format!("cannot read the kill switch (fail safe): {e}")),
        };
        self.metrics
            .scheduler
            .kill_switch
            .set(i64::from(report.kill_switch.is_some()));
        if let Some(reason) = &report.kill_switch {
            tracing::warn!(%reason, "kill switch engaged: nothing fires");
            // Healthy all the same: ready, so its metrics stay scraped.
            self.metrics.scheduler.ticked(now);
            return Ok(report);
        }
        // The sweep and the records may have taken long: fire only while still leading.
        if !self.leading(now).await {
            tracing::warn!("leadership lapsed during the tick: nothing fires");
            self.cursor = None;
            report.leader = false;
            self.metrics.scheduler.leader.set(0);
            return Ok(report);
        }
        self.announce(now).await;
        self.fire_due(now, &mut report).await?;
        self.metrics.scheduler.ticked(now);
        Ok(report)
    }

    /// Reverts what runs left behind: the ledger of a run whose Job is not running (failed,
    /// vanished, overran its deadline), and anything past its expiry (the dead-man's switch).
    async fn sweep(
        &self,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), SchedulerError> {
        let running: std::collections::BTreeSet<String> = self
            .kube
            .drill_jobs()
            .await?
            .iter()
            .map(job_state)
            .filter(|s| s.phase == JobPhase::Active)
            .map(|s| s.name)
            .collect();
        let protection = crate::cluster::ledger::Protection::of(&self.config);
        match crate::cluster::ledger::sweep_expired(&self.kube, now, &running, &protection).await {
            Ok(outcomes) => {
                for outcome in &outcomes {
                    for line in crate::cluster::ledger::describe(outcome) {
                        tracing::warn!(%line, "sweep");
                    }
                    for rejected in outcome.result.iter().flat_map(|r| &r.rejected) {
                        self.metrics
                            .scheduler
                            .unverified
                            .get_or_create(&crate::history::metrics::UnverifiedLabels {
                                reason: crate::history::metrics::UnverifiedReason::of(
                                    &rejected.why,
                                ),
                            })
                            .inc();
                    }
                }
                report
                    .reverted
                    .extend(outcomes.into_iter().map(|o| o.ledger));
            }
            Err(e) => {
                tracing::error!(error = %e, "sweep for orphaned ledgers and expired artifacts failed")
            }
        }
        match record_closed_rollbacks(&self.kube, &self.store, now).await {
            Ok(closed) => report.rollbacks_closed.extend(closed),
            Err(e) => {
                tracing::error!(error = %e, "cannot look for ledgers closed since their revert failed")
            }
        }
        Ok(())
    }

    /// Posts the announcements due at `now` (see [`notify::due_announcements`]), leaving out
    /// the fires people vetoed; when the skip marks cannot be read, announces all the same.
    async fn announce(&mut self, now: DateTime<Utc>) {
        self.announced.retain(|_, start| *start >= now);
        let announced = &self.announced;
        let due = notify::due_announcements(&self.config, now, |drill, scheduled| {
            announced.contains_key(&(drill.to_owned(), scheduled))
        });
        if due.is_empty() {
            return;
        }
        let skips = crate::cluster::skips::read(&self.kube).await.ok();
        for a in due {
            let drill = &self.config.drills[a.drill];
            self.announced
                .insert((drill.name.clone(), a.scheduled), a.start);
            if skips
                .as_ref()
                .is_some_and(|s| s.find(&drill.name, a.scheduled).is_some())
            {
                continue;
            }
            tracing::info!(drill = %drill.name, scheduled = %stamp(a.scheduled), start = %stamp(a.start), "announcing");
            let mut notice = notify::Notice::announce(&self.config, drill, a.scheduled, a.start);
            notice.picks = Some(self.picks(a.drill, a.scheduled).await);
            self.notifier.send(&drill.notify, &notice);
        }
    }

    /// What the guard would pick for the fire of drill `index` at `scheduled`, judged as `plan
    /// --cluster --at` judges it, on the part of the cluster the fire reads, read now (within
    /// [`PICKS_BUDGET`]: an announcement is never held up for long).
    async fn picks(&self, index: usize, scheduled: DateTime<Utc>) -> notify::Picks {
        let drill = &self.config.drills[index];
        let read = tokio::time::timeout(
            PICKS_BUDGET,
            crate::cluster::snapshot::read_for(&self.kube, drill),
        )
        .await;
        let cluster = match read {
            Ok(Ok((cluster, _))) => cluster,
            Ok(Err(e)) => {
                return notify::Picks::NotJudged(format!("the cluster could not be read: {e}"))
            }
            Err(_) => {
                return notify::Picks::NotJudged(format!(
                    "the cluster did not answer within {}s",
                    PICKS_BUDGET.as_secs()
                ))
            }
        };
        let fires = schedule::upcoming::calendar(
            &self.config,
            scheduled,
            schedule::upcoming::Window::At(scheduled),
            Some(&cluster),
            false,
        );
        let verdict = fires
            .iter()
            .find(|f| f.drill == drill.name)
            .and_then(|f| f.verdict.as_ref());
        notify::Picks::of(verdict, drill.kind().name())
    }

    /// Posts the outcome of a run this scheduler saw running, if its drill is still in the file.
    fn ended(&self, record: &RunRecord) {
        if !self.watch(&record.id, false) {
            return;
        }
        if let Some(drill) = self.config.drill(&record.drill) {
            let notice = notify::Notice::outcome(&self.config, drill, record);
            self.notifier.send(&drill.notify, &notice);
        }
    }

    /// Starts watching `run` (`true`: whether it was not watched) or stops (whether it was).
    fn watch(&self, run: &str, on: bool) -> bool {
        let Ok(mut watching) = self.watching.lock() else {
            return false;
        };
        if on {
            watching.insert(run.to_owned())
        } else {
            watching.remove(run)
        }
    }

    /// Backfills records left in the cluster and records Jobs that ended without one.
    async fn reconcile(
        &self,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), SchedulerError> {
        for run in self.kube.results().await? {
            match self.store.record_run(&run).await {
                Ok(()) => {}
                // Another run's record under this id: never merged, left for a person.
                Err(e @ crate::history::store::StoreError::Conflict { .. }) => {
                    tracing::error!(run = %run.id, error = %e, "a result left in the cluster conflicts with the history; it stays in its ConfigMap");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            self.kube.delete_result(&run.id).await?;
            tracing::info!(run = %run.id, status = %run.status, "backfilled a record the executor left in the cluster");
            report.recorded.push((run.id.clone(), run.status));
        }
        let jobs: BTreeMap<String, JobPhase> = self
            .kube
            .drill_jobs()
            .await?
            .iter()
            .map(|j| {
                let s = job_state(j);
                (s.name, s.phase)
            })
            .collect();
        for run in self
            .store
            .runs(None, Some(now - TimeDelta::days(32)))
            .await?
        {
            if run.status != RunStatus::Running {
                self.ended(&run);
                continue;
            }
            self.watch(&run.id, true);
            let ended = match jobs.get(&run.id) {
                Some(JobPhase::Active) => continue,
                // It finished; the executor's own record may still be on its way.
                Some(JobPhase::Succeeded) => "its Job finished without leaving a record".to_owned(),
                Some(JobPhase::Failed(reason)) => {
                    format!("its Job failed ({reason}) without leaving a record")
                }
                None => "its Job was deleted before it finished".to_owned(),
            };
            if let Some(left) = self.kube.result(&run.id).await? {
                if let Err(e) = self.store.record_run(&left).await {
                    match e {
                        // Never merged, and never a reason to stop firing: left for a person.
                        crate::history::store::StoreError::Conflict { .. } => {
                            tracing::error!(run = %left.id, error = %e, "a result left in the cluster conflicts with the history; it stays in its ConfigMap");
                            continue;
                        }
                        e => return Err(e.into()),
                    }
                }
                self.kube.delete_result(&run.id).await?;
                report.recorded.push((left.id.clone(), left.status));
                self.ended(&left);
                continue;
            }
            let mut failed = run.clone();
            failed.status = RunStatus::Error;
            failed.reason = Some(ended);
            failed.ended = Some(now);
            self.store.record_run(&failed).await?;
            tracing::error!(run = %failed.id, reason = ?failed.reason, "run recorded as error");
            self.ended(&failed);
            report.recorded.push((failed.id, RunStatus::Error));
        }
        Ok(())
    }

    /// Fires every fire that is due and not yet handled; records skips and misses.
    ///
    /// The calendar is kept from tick to tick (a [`Cursor`]): a tick takes from it only the
    /// fires that came due since the last, so it looks no further ahead than each drill's next
    /// fire and costs what those fires cost, whatever the period behind. A new calendar (the
    /// first tick of a leadership, another drill file, a tick that failed) starts `HORIZON`
    /// before the last instant a leader handled (kept in the store): far enough for a fire
    /// deferred past a long blackout to still be found when its turn comes, and for fires nobody
    /// was there for to be recorded as missed after an outage. It never reaches further before
    /// the first tick this store saw than the longest deadline, so a new installation does not
    /// record the past as missed. Fires the store has a record of are passed over.
    async fn fire_due(
        &mut self,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), SchedulerError> {
        let basis = Basis::of(&self.config);
        // Taken out: a tick that fails leaves none, and the next starts again from the store.
        let cursor = match self.cursor.take() {
            Some(cursor) if cursor.basis == basis => cursor,
            _ => self.new_cursor(now, basis).await?,
        };
        let config = &self.config;
        let Cursor {
            basis,
            mut state,
            waiting,
        } = cursor;
        let mut active = self
            .kube
            .drill_jobs()
            .await?
            .iter()
            .filter(|j| job_state(j).phase == JobPhase::Active)
            .count();
        let mut still = Vec::new();
        // The fires taken at an earlier tick first (this leader has not handled them), then
        // those due since, a batch at a time: after an outage a month of every-minute fires is
        // read and recorded a thousand at a time, never held.
        report.considered += waiting.len();
        let mut marks = Marks::default();
        for fire in waiting {
            if !self
                .handle(&fire, now, &mut active, &mut marks, report)
                .await?
            {
                still.push(fire);
            }
        }
        loop {
            let mut calendar = schedule::Calendar::resume(
                config.planned_drills(),
                config.timezone,
                &config.blackouts,
                config.concurrency as usize,
                state,
            );
            let batch: Vec<Fire> =
                std::iter::from_fn(|| calendar.next_before(now + TimeDelta::seconds(1)))
                    .map(|(fire, _)| fire)
                    .take(BATCH)
                    .collect();
            state = calendar.into_state();
            let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                break;
            };
            report.considered += batch.len();
            let handled: HashSet<(String, DateTime<Utc>)> = self
                .store
                .fires_between(
                    first.scheduled,
                    last.scheduled + TimeDelta::seconds(1),
                    Some(&self.store_cluster),
                    None,
                )
                .await?
                .into_iter()
                .map(|(_, f)| (f.drill, f.scheduled))
                .collect();
            for fire in batch {
                let drill = &config.drills[fire.drill];
                if handled.contains(&(drill.name.clone(), fire.scheduled)) {
                    continue;
                }
                if !self
                    .handle(&fire, now, &mut active, &mut marks, report)
                    .await?
                {
                    still.push(fire);
                }
            }
        }
        marks.finish(&self.kube, now).await;
        self.store.set_state(WATERMARK, &stamp(now)).await?;
        self.cursor = Some(Cursor {
            basis,
            state,
            waiting: still,
        });
        Ok(())
    }

    /// A calendar from where the store says this cluster's leaders got to.
    async fn new_cursor(&self, now: DateTime<Utc>, basis: Basis) -> Result<Cursor, SchedulerError> {
        let config = &self.config;
        let read = |text: Option<String>| {
            text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let first_tick = match read(self.store.state(FIRST_TICK).await?) {
            Some(t) => t,
            None => {
                self.store.set_state(FIRST_TICK, &stamp(now)).await?;
                now
            }
        };
        // A fire due shortly before the first tick still starts, late, within its deadline.
        let lookback = config
            .drills
            .iter()
            .filter_map(|d| TimeDelta::from_std(d.deadline).ok())
            .max()
            .unwrap_or(TimeDelta::hours(1))
            + TimeDelta::minutes(1);
        let handled_until = read(self.store.state(WATERMARK).await?)
            .unwrap_or(now)
            .min(now);
        let from = (handled_until - HORIZON).max(first_tick - lookback);
        let calendar = schedule::Calendar::<()>::open(
            config.planned_drills(),
            config.timezone,
            &config.blackouts,
            config.concurrency as usize,
            from,
            from + FOREVER,
        );
        Ok(Cursor {
            basis,
            state: calendar.into_state(),
            waiting: Vec::new(),
        })
    }

    /// Fires one fire if it is due and a slot is free, or records it skipped or missed: true.
    /// False when it must wait (not yet due, every slot taken, or the skip marks unreadable).
    async fn handle(
        &self,
        fire: &Fire,
        now: DateTime<Utc>,
        active: &mut usize,
        marks: &mut Marks,
        report: &mut TickReport,
    ) -> Result<bool, SchedulerError> {
        let config = &self.config;
        let drill = &config.drills[fire.drill];
        let run = job::run_id(&drill.name, fire.scheduled);
        let mut vetoed = None;
        let (status, reason) = match (fire.status, fire.start) {
            (FireStatus::Skipped, _) => ("skipped", fire.reason.clone().unwrap_or_default()),
            (FireStatus::Missed, _) | (_, None) => {
                ("missed", fire.reason.clone().unwrap_or_default())
            }
            (_, Some(start)) if start > now => return Ok(false),
            (_, Some(start)) => {
                let late = now - start;
                let deadline = TimeDelta::from_std(drill.deadline).unwrap_or(TimeDelta::hours(1));
                // A fire vetoed by a person is not run, whatever else holds it; one whose mark
                // cannot be read waits (fail safe) until it is read, or its deadline passes.
                vetoed = match marks.of(&self.kube, &drill.name, fire.scheduled).await {
                    Ok(mark) => mark,
                    Err(()) if late > deadline => None,
                    Err(()) => return Ok(false),
                };
                if let Some(skip) = &vetoed {
                    ("skipped", skip.describe())
                } else if late > deadline {
                    (
                        "missed",
                        format!(
                            "due at {}, the scheduler could only fire it at {}: past its deadline of {}",
                            stamp(start),
                            stamp(now),
                            firedrill_reader::duration::format(drill.deadline)
                        ),
                    )
                } else if *active >= config.concurrency as usize {
                    // Wait for a slot; a later tick fires it or finds it missed.
                    return Ok(false);
                } else {
                    let reason = self.fire(fire, &run, now, report).await?;
                    *active += 1;
                    ("fired", reason)
                }
            }
        };
        if status != "fired" {
            report
                .not_fired
                .push((drill.name.clone(), fire.scheduled, status.to_owned()));
        }
        // A run record for what a person or the deadline kept from running; a fire the
        // calendar skips (a blackout) is its fire record alone.
        let never_ran = match (status, &vetoed) {
            ("missed", _) => Some(RunStatus::Missed),
            (_, Some(_)) => Some(RunStatus::Skipped),
            _ => None,
        };
        if let Some(outcome) = never_ran {
            let mut record = running_record(&config.cluster, drill, &run, fire.scheduled, now);
            // Never fired: no Job ran it.
            record.evidence.job = Some(crate::run::JobNote { name: None });
            record.evidence.skipped = vetoed.as_ref().map(crate::cluster::skips::Skip::note);
            record.status = outcome;
            record.started = None;
            record.ended = Some(now);
            record.reason = Some(reason.clone());
            self.store.record_run(&record).await?;
            report.recorded.push((run.clone(), outcome));
            if vetoed.is_some() {
                tracing::warn!(drill = %drill.name, run = %run, scheduled = %stamp(fire.scheduled), %reason, "not fired: vetoed");
            }
        }
        // Whatever became of the fire, a mark of it has done its work.
        marks.handled(&drill.name, fire.scheduled);
        self.store
            .record_fire(&FireRecord {
                drill: drill.name.clone(),
                scheduled: fire.scheduled,
                status: status.to_owned(),
                reason: Some(reason).filter(|r| !r.is_empty()),
                run: (status != "skipped" || vetoed.is_some()).then_some(run),
            })
            .await?;
        self.metrics.scheduler.fire(match status {
            "fired" => crate::history::metrics::FireStatus::fired,
            "skipped" => crate::history::metrics::FireStatus::skipped,
            _ => crate::history::metrics::FireStatus::missed,
        });
        Ok(true)
    }

    /// Creates the Job of a due fire and records its run as running; why it did not start on
    /// the minute (deferral or queueing, and lateness), if it did not.
    async fn fire(
        &self,
        fire: &Fire,
        run: &str,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<String, SchedulerError> {
        let config = &self.config;
        let drill = &config.drills[fire.drill];
        let late = now - fire.start.unwrap_or(fire.scheduled);
        let r = RunRef {
            drill: drill.name.clone(),
            run: run.to_owned(),
            scheduled: fire.scheduled,
            dry_run: false,
        };
        let created = self
            .kube
            .create_job(&job::render(config, drill, &r, &self.runtime))
            .await?;
        if self.store.run(run).await?.is_none() {
            self.store
                .record_run(&running_record(
                    &config.cluster,
                    drill,
                    run,
                    fire.scheduled,
                    now,
                ))
                .await?;
        }
        tracing::info!(drill = %drill.name, run = %run, scheduled = %stamp(fire.scheduled), late_seconds = late.num_seconds(), created = ?created, "fired");
        if created == Created::New {
            report.fired.push(run.to_owned());
            self.watch(run, true);
            let notice = notify::Notice::start(config, drill, run, fire.scheduled, now);
            self.notifier.send(&drill.notify, &notice);
        }
        let late = (late > TimeDelta::seconds(60)).then(|| {
            format!(
                "fired {} late",
                firedrill_reader::duration::format(late.to_std().unwrap_or_default())
            )
        });
        Ok([fire.reason.clone(), late]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// The fires people vetoed (`firedrill skip`), as one tick sees them: read once, when the first
/// fire comes due, and the marks of the fires the tick handled taken out at its end, in one
/// write.
#[derive(Default)]
struct Marks {
    read: Option<Result<crate::cluster::skips::Skips, ()>>,
    handled: Vec<(String, DateTime<Utc>)>,
}

impl Marks {
    /// The mark of one fire; `Err` when the marks cannot be read (said in the log). A
    /// ConfigMap of the name that is not firedrill's is not followed: no marks.
    async fn of(
        &mut self,
        kube: &Kube,
        drill: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<Option<crate::cluster::skips::Skip>, ()> {
        use crate::cluster::skips::{self, SkipError};
        if self.read.is_none() {
            self.read = Some(match skips::read(kube).await {
                Ok(s) => Ok(s),
                Err(e @ SkipError::Foreign { .. }) => {
                    tracing::error!(error = %e, "skip marks not followed: every fire runs as planned");
                    Ok(skips::Skips::default())
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the skip marks: due fires wait (fail safe)");
                    Err(())
                }
            });
        }
        match &self.read {
            Some(Ok(s)) => Ok(s.find(drill, scheduled).cloned()),
            _ => Err(()),
        }
    }

    fn handled(&mut self, drill: &str, scheduled: DateTime<Utc>) {
        if let Some(Ok(s)) = &self.read {
            if s.find(drill, scheduled).is_some() {
                self.handled.push((drill.to_owned(), scheduled));
            }
        }
    }

    /// Takes the handled fires' marks out (and the expired ones with them). A failure is said
    /// and left: the fire is recorded, so the mark is never read again, and it expires.
    async fn finish(self, kube: &Kube, now: DateTime<Utc>) {
        if self.handled.is_empty() {
            return;
        }
        let taken = crate::cluster::skips::change(kube, now, |skips| {
            for (drill, scheduled) in &self.handled {
                skips.remove(drill, *scheduled);
            }
            Ok(())
        })
        .await;
        if let Err(e) = taken {
            tracing::warn!(error = %e, "the marks of vetoed fires stay until they expire");
        }
    }
}

/// The calendar a leader fires from, between ticks: where the simulation is, and the fires
/// taken from it that are not yet handled (due later, or waiting for a slot).
struct Cursor {
    basis: Basis,
    state: schedule::CalendarState,
    waiting: Vec<Fire>,
}

/// What a calendar is made of: a drill file that changes any of it starts a new one.
#[derive(Clone, Debug, PartialEq)]
struct Basis {
    drills: Vec<(String, String, chrono_tz::Tz, Duration, Duration, bool)>,
    blackouts: Vec<schedule::Blackout>,
    zone: chrono_tz::Tz,
    concurrency: u32,
}

impl Basis {
    fn of(config: &Config) -> Self {
        Basis {
            drills: config
                .planned_drills()
                .iter()
                .map(|d| {
                    (
                        d.name.to_owned(),
                        d.cron.text().to_owned(),
                        d.zone,
                        d.duration,
                        d.deadline,
                        d.defer_on_blackout,
                    )
                })
                .collect(),
            blackouts: config.blackouts.clone(),
            zone: config.timezone,
            concurrency: config.concurrency,
        }
    }
}

/// How many fires a tick takes from the calendar at a time.
const BATCH: usize = 1024;
/// How far ahead a leader's calendar reaches: further than any leadership lasts.
const FOREVER: TimeDelta = TimeDelta::days(100 * 366);

/// The store key of the last instant a leader handled.
const WATERMARK: &str = "handled_until";
/// The store key of the first tick a leader made with this store.
const FIRST_TICK: &str = "first_tick";
/// How far before the last handled instant the scheduler looks for fires still to handle.
const HORIZON: TimeDelta = TimeDelta::days(31);

fn running_record(
    cluster: &str,
    drill: &crate::config::Drill,
    run: &str,
    scheduled: DateTime<Utc>,
    now: DateTime<Utc>,
) -> RunRecord {
    RunRecord {
        cluster: cluster.to_owned(),
        id: run.to_owned(),
        drill: drill.name.clone(),
        kind: drill.kind().to_string(),
        scheduled,
        started: Some(now),
        ended: None,
        status: RunStatus::Running,
        reason: None,
        targets: Vec::new(),
        measurements: Measurements::default(),
        // The Job the scheduler created (or found, by its deterministic name) for this fire.
        evidence: Box::new(crate::run::Evidence {
            fired_by: Some("scheduler".to_owned()),
            job: Some(crate::run::JobNote {
                name: Some(run.to_owned()),
            }),
            ..crate::run::Evidence::new()
        }),
    }
}

/// What `firedrill status` prints: the leader, the kill switch, running drills, the next fires.
/// Each part that cannot be read says so instead of failing the whole report.
pub async fn status_report(config: &Config, kube: &Kube, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    out.push_str(&match kube.leader().await {
        Ok(Some((holder, renewed))) => format!("leader:       {holder} (renewed {renewed})\n"),
        Ok(None) => "leader:       none (no scheduler holds the Lease)\n".to_owned(),
        Err(e) => format!("leader:       unknown ({e})\n"),
    });
    out.push_str(&match kube.kill_switch().await {
        Ok(None) => "kill switch:  off\n".to_owned(),
        Ok(Some(reason)) => format!("kill switch:  ENGAGED: {reason}\n"),
        Err(e) => format!("kill switch:  unknown ({e}); the scheduler treats this as engaged\n"),
    });
    match kube.drill_jobs().await {
        Ok(jobs) => {
            let running: Vec<_> = jobs
                .iter()
                .map(job_state)
                .filter(|s| s.phase == JobPhase::Active)
                .collect();
            out.push_str(&format!(
                "running:      {}\n",
                if running.is_empty() {
                    "none".to_owned()
                } else {
                    running.len().to_string()
                }
            ));
            for s in running {
                out.push_str(&format!(
                    "  {} (drill {})\n",
                    s.name,
                    s.drill.unwrap_or_default()
                ));
            }
        }
        Err(e) => out.push_str(&format!("running:      unknown ({e})\n")),
    }
    let skips = match crate::cluster::skips::read(kube).await {
        Ok(skips) => {
            let pending: Vec<_> = skips.marks.iter().filter(|s| s.scheduled > now).collect();
            out.push_str(&format!(
                "skipped:      {}\n",
                if pending.is_empty() {
                    "none".to_owned()
                } else {
                    pending.len().to_string()
                }
            ));
            for s in pending {
                out.push_str(&format!(
                    "  {} at {} ({}, marked {})\n",
                    s.drill,
                    stamp(s.scheduled),
                    s.describe(),
                    stamp(s.marked)
                ));
            }
            Some(skips)
        }
        Err(e) => {
            out.push_str(&format!("skipped:      unknown ({e})\n"));
            None
        }
    };
    out.push_str("next fires:\n");
    out.push_str(&next_fires(config, now, skips.as_ref()));
    out
}

/// The next five fires of the drill file, as `plan` shows them, with the fires people vetoed
/// marked skipped when `skips` are known.
pub fn next_fires(
    config: &Config,
    now: DateTime<Utc>,
    skips: Option<&crate::cluster::skips::Skips>,
) -> String {
    use crate::schedule::upcoming;
    let mut fires = upcoming::calendar(config, now, upcoming::Window::Next(5), None, false);
    if let Some(skips) = skips {
        fires = fires
            .into_iter()
            .map(|f| upcoming::vetoed(f, skips))
            .collect();
    }
    upcoming::render_table(&fires)
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Store(#[from] crate::history::store::StoreError),
}

/// Why the failed reverts could not be looked at: the history or the cluster did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RollbacksUnread {
    #[error("{0}")]
    Store(#[from] crate::history::store::StoreError),
    #[error("{0}")]
    Cluster(#[from] firedrill_rollback::ClusterError),
}

/// Looks at the ledger of every run in this cluster's history whose revert failed: one since
/// closed (the sweep's retry, `firedrill rollback` or `stop` replayed it) is recorded in the
/// run's evidence as restored, which closes the report's follow-up; one deleted while open is
/// recorded as such, and its follow-up stays open. An open or unreadable ledger is left for the
/// next sweep; a run that cannot be updated is said and skipped.
pub async fn record_closed_rollbacks(
    kube: &Kube,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<String>, RollbacksUnread> {
    let cluster = crate::cluster::ledger::KubeCluster::new(kube);
    let mut closed = Vec::new();
    for run in store.open_rollbacks().await? {
        let name = firedrill_rollback::ledger_name(&run);
        let (restored, how) = match cluster.ledger(&run).await? {
            Some(Ok(l)) if !l.is_open() => (
                true,
                format!("ledger {name} closed: every change reverted, or left and said"),
            ),
            Some(_) => continue,
            None => (
                false,
                format!("ledger {name} deleted while open: what it held was never seen reverted; look at the objects it named"),
            ),
        };
        match store.close_rollback(&run, now, restored, &how).await {
            Ok(true) => {
                tracing::info!(%run, %how, "a failed revert's ledger is no longer open; recorded");
                closed.push(run);
            }
            Ok(false) => {
                tracing::warn!(%run, "a failed revert was tracked for a run the history no longer has; no longer tracked")
            }
            Err(e) => {
                tracing::error!(%run, error = %e, "cannot record that a failed revert's ledger is closed; tried again at the next sweep")
            }
        }
    }
    Ok(closed)
}
