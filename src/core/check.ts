// One run, in phases: the --stop lookup, the entries' lookups, incremental selection (§3),
// probing (§4, §5), the decision (§6). Nothing of a run outlives it; no module state.
import type {AttemptFn} from './attempt.js'
import type {OutcomeCache} from './cache.js'
import {FatalError, OUT_OF_RESOURCES, outOfResources} from './errors.js'
import {canonicalName, familyOf, hostPort, type Entry} from './grammar.js'
import {raceAddresses, type AttemptRecord, type RaceResult} from './race.js'
import type {Lookup, Resolver} from './resolve.js'
import {decide, isLocalHost, selectCandidates, type Decision, type Localness, type Selection, type Stop} from './selection.js'

export interface CheckOptions {
  readonly entries: readonly Entry[]
  /** `--stop` as parsed: an address literal (normalised) or a name to resolve. */
  readonly stop?: {address: string} | {name: string}
  /** Per-server budget in ms; 0 = no limit. */
  readonly timeoutMs: number
  readonly port: number
  readonly attemptDelayMs: number
  /** `-4` / `-6`: probe only this family. */
  readonly family?: 4 | 6
  readonly sequential: boolean
}

export interface CheckDeps {
  readonly resolver: Resolver
  readonly attempt: AttemptFn
  /** Monotonic milliseconds. */
  readonly now: () => number
  /** The run's start on `now`'s clock, so that every trace line shares one clock (default: when check() is called). */
  readonly startMs?: number
  readonly cache?: OutcomeCache
  /** Aborting it (SIGINT/SIGTERM) tears every attempt down. */
  readonly signal?: AbortSignal
  readonly onEvent?: (event: TraceEvent) => void
}

export interface LookupRecord extends Lookup {
  readonly startMs: number
  readonly endMs: number
}

export interface ServerRecord {
  readonly entry: Entry
  /** Addresses tried (after `-4`/`-6`). */
  readonly addresses: string[]
  readonly attempts: AttemptRecord[]
  readonly available: boolean
  /** Why it is unavailable when no attempt says so (lookup failed, wrong family, budget). */
  readonly note?: string
}

export interface Report {
  readonly entries: readonly Entry[]
  readonly stop?: {given: string; addresses: string[]}
  readonly selection: Selection
  readonly servers: ServerRecord[]
  /** Every name lookup made (candidates or not), by entry. */
  readonly lookups: ReadonlyMap<Entry, LookupRecord>
  /** The server printed, if any. */
  readonly winner?: Entry
  readonly exitCode: 0 | 1
  readonly elapsedMs: number
}

export type TraceEvent =
  | {type: 'entries'; ms: number; entries: readonly Entry[]}
  | {type: 'stop'; ms: number; given: string; addresses: string[]}
  | {type: 'lookup'; ms: number; host: string; lookup: LookupRecord}
  | {type: 'selection'; ms: number; selection: Selection}
  | {type: 'attempt-start'; ms: number; server: string; address: string; port: number}
  | {type: 'attempt'; ms: number; server: string; record: AttemptRecord}
  | {type: 'server'; ms: number; server: string; available: boolean; note?: string}
  | {type: 'decision'; ms: number; winner?: string; exitCode: 0 | 1}

/** One budget: aborts with 'timeout' after its time, or with the run's reason; `release()` ends it as 'cancelled'. */
interface Budget {
  readonly signal: AbortSignal
  release(): void
}

/**
 * What every phase of one run shares: its clock, its trace, and its budgets. The run holds
 * one listener on the caller's signal and aborts its live budgets itself, so a budget costs
 * a controller and a timer, never a listener on a shared signal (40,000 words stay linear).
 */
interface Run {
  readonly options: CheckOptions
  readonly deps: CheckDeps
  elapsed(): number
  emit(event: TraceEvent): void
  budget(ms: number): Budget
  /** Tears every live budget down; later budgets start aborted. */
  end(reason: string): void
}

function startRun(options: CheckOptions, deps: CheckDeps): Run & {dispose(): void} {
  const t0 = deps.startMs ?? deps.now()
  const live = new Set<AbortController>()
  let ended: unknown
  const end = (reason: unknown) => {
    ended ??= reason
    for (const controller of live) controller.abort(reason)
    live.clear()
  }
  const onParent = () => end(deps.signal!.reason)
  if (deps.signal?.aborted) onParent()
  deps.signal?.addEventListener('abort', onParent, {once: true})
  return {
    options,
    deps,
    elapsed: () => Math.round(deps.now() - t0),
    emit: (event) => deps.onEvent?.(event),
    budget(ms) {
      const controller = new AbortController()
      if (ended !== undefined) {
        controller.abort(ended)
        return {signal: controller.signal, release() {}}
      }
      live.add(controller)
      const timer = ms > 0 ? setTimeout(() => (live.delete(controller), controller.abort('timeout')), ms) : undefined
      return {
        signal: controller.signal,
        release() {
          clearTimeout(timer)
          live.delete(controller)
          controller.abort('cancelled')
        },
      }
    },
    end,
    dispose: () => deps.signal?.removeEventListener('abort', onParent),
  }
}

/** Resolve within `signal`; a budget that runs out (or a run that ends) is a dns-error. */
function lookupWithin(resolver: Resolver, name: string, signal: AbortSignal): Promise<Lookup> {
  const cut = (): Lookup => ({outcome: 'dns-error', addresses: [], error: signal.reason === 'timeout' ? 'ETIMEOUT' : 'cancelled'})
  if (signal.aborted) return Promise.resolve(cut())
  return new Promise((resolve) => {
    const onAbort = () => resolve(cut())
    signal.addEventListener('abort', onAbort, {once: true})
    void resolver(name, signal).then((lookup) => {
      signal.removeEventListener('abort', onAbort)
      resolve(lookup)
    })
  })
}

/** Phase 1: --stop's addresses (a literal, or its name resolved within one budget); exit 2 if it has none. */
async function lookupStop(run: Run): Promise<{stop?: Stop; report?: Report['stop']}> {
  const given = run.options.stop
  if (!given) return {}
  let stop: Stop
  if ('address' in given) {
    stop = {addresses: [given.address]}
  } else {
    const b = run.budget(run.options.timeoutMs)
    const lookup = await lookupWithin(run.deps.resolver, given.name, b.signal)
    b.release()
    if (lookup.outcome !== 'resolved') {
      throw new FatalError(`cannot resolve --stop "${given.name}": ${lookup.outcome}${lookup.error ? ` (${lookup.error})` : ''}`, 'stop-lookup')
    }
    stop = {name: canonicalName(given.name), addresses: lookup.addresses}
  }
  const report = {given: 'address' in given ? given.address : given.name, addresses: [...stop.addresses]}
  run.emit({type: 'stop', ms: run.elapsed(), ...report})
  return {stop, report}
}

interface PendingLookup {
  readonly record: Promise<LookupRecord>
  /** Ends the lookup's budget (the lookup then ends as cancelled if still running). */
  readonly release: () => void
}

/** Phase 2: every entry's lookup starts at once (a literal is its own answer), each within its own budget. */
function startLookups(run: Run): PendingLookup[] {
  return run.options.entries.map((entry) => {
    const startMs = run.elapsed()
    if (entry.kind !== 'name') return {record: Promise.resolve({outcome: 'resolved', addresses: [entry.host], startMs, endMs: startMs}), release() {}}
    const b = run.budget(run.options.timeoutMs)
    const record = lookupWithin(run.deps.resolver, entry.host, b.signal).then((lookup) => {
      b.release()
      const done = {...lookup, startMs, endMs: run.elapsed()}
      run.emit({type: 'lookup', ms: done.endMs, host: entry.name, lookup: done})
      return done
    })
    return {record, release: b.release}
  })
}

interface Selector {
  /** Resolves once the entry is known to be a candidate or not (SPEC §3), never earlier or later. */
  readonly decided: Array<Promise<Decision>>
  /** The answer is known: undecided entries are not probed; returns the selection as far as known. */
  close(): Selection
}

/**
 * Phase 3: incremental selection. Each entry's fate is decided as soon as the lookups it
 * depends on have ended (selection.ts `decide`); lookups that can no longer change anything
 * are torn down once every entry is decided. Decisions are recomputed once per batch of
 * lookups that end together (one microtask), so the cost stays linear for literal lists.
 */
function selectIncrementally(run: Run, stop: Stop | undefined, lookups: PendingLookup[]): Selector {
  const {entries} = run.options
  const local: Localness[] = entries.map((entry) => (stop ? undefined : false))
  const settle: Array<(decision: Decision) => void> = []
  const decided = entries.map(() => new Promise<Decision>((resolve) => settle.push(resolve)))
  const known: Decision[] = entries.map(() => undefined)
  let open = entries.length
  let scheduled = false
  let final: Selection | undefined
  const current = (): Selection => {
    const selection = selectCandidates(entries, (entry) => local[entry.index] === true)
    if (open === 0) return selection
    const reason = `${selection.reason} (answer known before every lookup ended)`
    return {...selection, candidates: entries.filter((e) => known[e.index] === 'candidate'), reason}
  }
  const recompute = () => {
    scheduled = false
    if (final) return
    const decisions = decide(entries, local)
    for (const [i, decision] of decisions.entries()) {
      if (decision === undefined || known[i] !== undefined) continue
      known[i] = decision
      open--
      settle[i](decision)
    }
    if (open > 0) return
    run.emit({type: 'selection', ms: run.elapsed(), selection: current()})
    for (const [i, lookup] of lookups.entries()) if (known[i] !== 'candidate') lookup.release()
  }
  const schedule = () => {
    if (!scheduled) queueMicrotask(recompute)
    scheduled = true
  }
  if (stop) {
    for (const [i, entry] of entries.entries()) {
      // A name equal to the stop name is the local host whatever its lookup says.
      if (isLocalHost(entry, [], stop)) local[i] = true
      else void lookups[i].record.then((record) => ((local[i] = isLocalHost(entry, record.addresses, stop)), schedule()))
    }
  }
  schedule()
  return {
    decided,
    close() {
      if (final) return final
      final = current()
      if (open > 0) run.emit({type: 'selection', ms: run.elapsed(), selection: final})
      for (const resolve of settle) resolve('excluded')
      return final
    },
  }
}

/** Addresses never probed: an unspecified address reaches this host's own MTA (issue 10). */
const UNSPECIFIED = new Set(['0.0.0.0', '::'])

/** Phase 4: probe one candidate's addresses within `signal` (its budget). */
async function probe(run: Run, entry: Entry, lookup: LookupRecord, signal: AbortSignal): Promise<ServerRecord> {
  const {options, deps} = run
  const family = lookup.addresses.filter((address) => !options.family || familyOf(address) === options.family)
  const addresses = family.filter((address) => !UNSPECIFIED.has(address))
  const dropped = family.filter((address) => UNSPECIFIED.has(address))
  let note: string | undefined
  if (lookup.outcome !== 'resolved') note = `lookup ${lookup.outcome}`
  else if (family.length === 0) note = `no IPv${options.family} address`
  else if (addresses.length === 0) note = `unspecified address ${dropped.join(', ')} not probed`
  let result: RaceResult = {attempts: []}
  if (!note && signal.aborted) note = signal.reason === 'cancelled' ? 'cancelled' : 'budget ran out'
  if (!note) {
    result = await raceAddresses(addresses, {
      port: options.port,
      attemptDelayMs: options.attemptDelayMs,
      signal,
      attempt: deps.attempt,
      elapsed: run.elapsed,
      remembered: deps.cache ? (a, p) => deps.cache!.lookup(a, p) : undefined,
      onAttemptStart: (address, port) => run.emit({type: 'attempt-start', ms: run.elapsed(), server: entry.name, address, port}),
      onAttemptEnd: (record) => {
        deps.cache?.note(record)
        run.emit({type: 'attempt', ms: record.endMs, server: entry.name, record})
      },
    })
  }
  const available = result.winner !== undefined
  if (!available && !note && signal.reason === 'timeout') note = 'budget ran out'
  if (!available && !note && dropped.length > 0) note = `unspecified address ${dropped.join(', ')} not probed`
  run.emit({type: 'server', ms: run.elapsed(), server: entry.name, available, note})
  return {entry, addresses, attempts: result.attempts, available, note}
}

/** A candidate's budget starts when it is selected and covers what its own lookup left (waiting for others is free). */
async function probeWithinBudget(run: Run, entry: Entry, lookup: LookupRecord): Promise<ServerRecord> {
  const {timeoutMs} = run.options
  const b = run.budget(timeoutMs > 0 ? Math.max(1, timeoutMs - (lookup.endMs - lookup.startMs)) : 0)
  try {
    return await probe(run, entry, lookup, b.signal)
  } finally {
    b.release()
  }
}

interface Probing {
  readonly servers: ServerRecord[]
  readonly winner?: Entry
}

/** Phase 4, default: every candidate is probed as soon as it is selected; the first available wins. */
async function probeAtOnce(run: Run, lookups: PendingLookup[], selector: Selector): Promise<Probing> {
  const servers: ServerRecord[] = []
  const probes = run.options.entries.map(async (entry, i) => {
    if ((await selector.decided[i]) !== 'candidate') return undefined
    const server = await probeWithinBudget(run, entry, await lookups[i].record)
    servers.push(server)
    return server
  })
  const winner = await new Promise<Entry | undefined>((resolve) => {
    for (const p of probes) void p.then((server) => server?.available && resolve(server.entry))
    void Promise.all(probes).then(() => resolve(undefined))
  })
  run.end('cancelled')
  selector.close()
  await Promise.all(probes)
  return {servers, winner}
}

/** Phase 4, --sequential: one candidate at a time in list order; the first available wins. */
async function probeInOrder(run: Run, lookups: PendingLookup[], selector: Selector): Promise<Probing> {
  const servers: ServerRecord[] = []
  for (const [i, entry] of run.options.entries.entries()) {
    if ((await selector.decided[i]) !== 'candidate') continue
    const server = await probeWithinBudget(run, entry, await lookups[i].record)
    servers.push(server)
    if (server.available) return {servers, winner: entry}
  }
  return {servers}
}

/**
 * Phase 5: the answer. No candidate available is exit 0 only if every candidate could be
 * probed: one this host lacked the descriptors or buffers to probe makes it a system error.
 */
function conclude(run: Run, probing: Probing): 0 | 1 {
  if (!probing.winner) {
    for (const server of probing.servers) {
      const starved = server.attempts.find((a) => a.error && OUT_OF_RESOURCES.has(a.error))
      if (starved) {
        throw new FatalError(`system error: cannot probe ${server.entry.name} (${hostPort(starved.address, starved.port)}): ${outOfResources(starved.error!)}`)
      }
    }
  }
  const exitCode = probing.winner ? 1 : 0
  run.emit({type: 'decision', ms: run.elapsed(), winner: probing.winner?.name, exitCode})
  return exitCode
}

/**
 * SPEC §3: a lookup that failed for a local reason (EMFILE, …) tells nothing about its name,
 * so an answer that could rest on it is a system error: with a winner, when the failed entry
 * could exclude it were it the local host (list order before it, or a priority ≤ its own);
 * without one, when the failed entry was a candidate (it could not be probed).
 */
function failOnStarvedLookup(lookups: ReadonlyMap<Entry, Lookup>, selection: Selection, winner: Entry | undefined): void {
  const candidates = new Set(selection.candidates)
  for (const [entry, lookup] of lookups) {
    if (lookup.outcome !== 'dns-error' || !OUT_OF_RESOURCES.has(lookup.error ?? '')) continue
    const matters = winner
      ? entry.index < winner.index || (entry.prio !== undefined && winner.prio !== undefined && entry.prio <= winner.prio)
      : candidates.has(entry)
    if (matters) throw new FatalError(`system error: cannot look up ${entry.name}: ${outOfResources(lookup.error!)}`)
  }
}

export async function check(options: CheckOptions, deps: CheckDeps): Promise<Report> {
  const run = startRun(options, deps)
  run.emit({type: 'entries', ms: run.elapsed(), entries: options.entries})
  const lookups = startLookups(run)
  let stopReport: Report['stop']
  let selection: Selection
  let probing: Probing
  let records: LookupRecord[]
  try {
    const stop = await lookupStop(run)
    stopReport = stop.report
    const selector = selectIncrementally(run, stop.stop, lookups)
    probing = await (options.sequential ? probeInOrder : probeAtOnce)(run, lookups, selector)
    selection = selector.close()
  } finally {
    // Nothing of the run outlives it: every budget ends, every lookup settles.
    run.end('cancelled')
    records = await Promise.all(lookups.map((lookup) => lookup.record))
    run.dispose()
  }
  const lookupRecords = new Map(options.entries.flatMap((entry, i) => (entry.kind === 'name' ? [[entry, records[i]] as const] : [])))
  failOnStarvedLookup(lookupRecords, selection, probing.winner)
  const exitCode = conclude(run, probing)
  const servers = [...probing.servers].sort((a, b) => a.entry.index - b.entry.index)
  return {entries: options.entries, stop: stopReport, selection, servers, lookups: lookupRecords, winner: probing.winner, exitCode, elapsedMs: run.elapsed()}
}
