// One run, in phases: the --stop lookup, the entries' lookups, incremental selection (§3),
// probing (§4, §5), the decision (§6). Nothing of a run outlives it; no module state.
import type {AttemptFn} from './attempt.js'
import type {OutcomeCache} from './cache.js'
import {FatalError, OUT_OF_RESOURCES, outOfResources, quote} from './errors.js'
import {canonicalName, familyOf, hostPort, type Entry, type StopGiven} from './grammar.js'
import {raceAddresses, type AttemptRecord, type RaceResult} from './race.js'
import type {Lookup, Resolver} from './resolve.js'
import {decide, isLocalHost, lookupMatters, selectCandidates, type Decision, type Localness, type Selection, type Stop} from './selection.js'

export interface CheckOptions {
  readonly entries: readonly Entry[]
  /** The local host's identities (each `--stop`; in serve also the request's server_address): an address literal (normalised) or a name to resolve. */
  readonly stops?: readonly StopGiven[]
  /**
   * SPEC §10 (--mx, serve): with at least one identity, the local host must be found among
   * the entries to defer; if none is it, there is no candidate. Without it (a list of server
   * words), no local entry makes every entry a candidate (SPEC §3, the original's rule).
   */
  readonly mustFindLocal?: boolean
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
  /** Each identity as given and the addresses it stands for, in the order given. */
  readonly stops: Array<{given: string; addresses: string[]}>
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
  | {type: 'decision'; ms: number; winner?: string; exitCode: 0 | 1; localNotFound?: boolean}

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

/** A --stop name that gave no address: exit 2 naming it (the command and serve's start-up). */
export function stopUnresolved(name: string, lookup: Lookup): FatalError {
  return new FatalError(`cannot resolve --stop ${quote(name)}: ${lookup.outcome}${lookup.error ? ` (${lookup.error})` : ''}`, 'stop-lookup')
}

/** Phase 1: the identities' addresses (a literal, or a name resolved within its own budget, all at once); exit 2 if a name has none. */
async function lookupStops(run: Run): Promise<{stop?: Stop; report: Report['stops']}> {
  const given = run.options.stops ?? []
  if (given.length === 0) return {report: []}
  const identities = await Promise.all(given.map(async (identity) => {
    if ('address' in identity) return {given: identity.address, addresses: [identity.address]}
    const b = run.budget(run.options.timeoutMs)
    const lookup = await lookupWithin(run.deps.resolver, identity.name, b.signal)
    b.release()
    if (lookup.outcome !== 'resolved') throw stopUnresolved(identity.name, lookup)
    return {given: identity.name, addresses: lookup.addresses}
  }))
  for (const report of identities) run.emit({type: 'stop', ms: run.elapsed(), ...report})
  const names = given.flatMap((identity) => ('name' in identity ? [canonicalName(identity.name)] : []))
  return {stop: {names, addresses: [...new Set(identities.flatMap((i) => i.addresses))]}, report: identities}
}

/** Name lookups one run has in flight at most (SPEC §3; the man page says why 32). */
export const LOOKUPS_IN_FLIGHT = 32

interface Lookups {
  /** Each entry's lookup once it ended; undefined for a name never asked for (it could not change the answer). */
  readonly records: Array<Promise<LookupRecord | undefined>>
  /** Decides which names are still worth asking for; consulted when each one's turn comes. */
  matters: (i: number) => boolean
  /** Whether a lookup that ends starts the next at once (else whoever set `matters` pumps, once it is up to date). */
  pumpOnEnd: boolean
  /** Start what the bound allows now (after `matters` changed). */
  pump(): void
  /** Ends entry i's lookup (cancelled if still running) or, if not started, its turn. */
  release(i: number): void
  /** Ends every lookup and every turn: nothing more is asked. */
  close(): void
}

/** Names in preference order: entries without a priority first, in list order, then by priority (equal ones in list order). */
function preferenceOrder(entries: readonly Entry[]): number[] {
  const names = entries.filter((entry) => entry.kind === 'name')
  return names.sort((a, b) => (a.prio ?? -1) - (b.prio ?? -1) || a.index - b.index).map((entry) => entry.index)
}

/**
 * Phase 2: the entries' lookups (a literal is its own answer), names in preference order,
 * at most LOOKUPS_IN_FLIGHT at once; a name whose lookup no longer `matters` when its turn
 * comes is never asked for. Each lookup's budget starts when it starts: waiting for a turn
 * is not charged to it.
 */
function startLookups(run: Run): Lookups {
  const {entries} = run.options
  const settle: Array<(record: LookupRecord | undefined) => void> = []
  const records = entries.map(() => new Promise<LookupRecord | undefined>((resolve) => settle.push(resolve)))
  const releases = new Map<number, () => void>()
  /** Started, or settled without a lookup (a literal, a turn skipped or released). */
  const taken = entries.map((entry) => entry.kind !== 'name')
  const skip = (i: number) => {
    taken[i] = true
    settle[i](undefined)
  }
  const order = preferenceOrder(entries)
  let next = 0
  let inFlight = 0
  let closed = false
  const start = (i: number) => {
    const startMs = run.elapsed()
    const b = run.budget(run.options.timeoutMs)
    releases.set(i, b.release)
    taken[i] = true
    inFlight++
    void lookupWithin(run.deps.resolver, entries[i].host, b.signal).then((lookup) => {
      b.release()
      releases.delete(i)
      inFlight--
      const done = {...lookup, startMs, endMs: run.elapsed()}
      run.emit({type: 'lookup', ms: done.endMs, host: entries[i].name, lookup: done})
      settle[i](done)
      if (lookups.pumpOnEnd) lookups.pump()
    })
  }
  const lookups: Lookups = {
    records,
    matters: () => true,
    pumpOnEnd: true,
    pump() {
      while (!closed && inFlight < LOOKUPS_IN_FLIGHT && next < order.length) {
        const i = order[next++]
        if (taken[i]) continue
        if (lookups.matters(i)) start(i)
        else skip(i)
      }
    },
    release(i) {
      const release = releases.get(i)
      if (release) release()
      else if (!taken[i]) skip(i)
    },
    close() {
      closed = true
      for (const release of [...releases.values()]) release()
      for (const [i, done] of taken.entries()) if (!done) skip(i)
    },
  }
  for (const [i, entry] of entries.entries()) {
    if (entry.kind !== 'name') settle[i]({outcome: 'resolved', addresses: [entry.host], startMs: run.elapsed(), endMs: run.elapsed()})
  }
  lookups.pump()
  return lookups
}

interface Selector {
  /** Resolves once the entry is known to be a candidate or not (SPEC §3), never earlier or later. */
  readonly decided: Array<Promise<Decision>>
  /** The answer is known: undecided entries are not probed, nothing more is looked up; returns the selection as far as known. */
  close(): Selection
}

/**
 * Phase 3: incremental selection. Each entry's fate is decided as soon as the lookups it
 * depends on have ended (selection.ts `decide`); after each decision the lookup queue
 * learns which names can still change anything (`lookupMatters`) before it starts the next,
 * and once every entry is decided the lookups of non-candidates are torn down. Decisions are
 * recomputed once per batch of lookups that end together (one microtask), so the cost stays
 * linear for literal lists.
 */
function selectIncrementally(run: Run, stop: Stop | undefined, lookups: Lookups): Selector {
  const {entries} = run.options
  const mustFindLocal = stop !== undefined && (run.options.mustFindLocal ?? false)
  const local: Localness[] = entries.map(() => (stop ? undefined : false))
  const settle: Array<(decision: Decision) => void> = []
  const decided = entries.map(() => new Promise<Decision>((resolve) => settle.push(resolve)))
  const known: Decision[] = entries.map(() => undefined)
  let open = entries.length
  let scheduled = false
  let final: Selection | undefined
  const current = (): Selection => {
    const selection = selectCandidates(entries, (entry) => local[entry.index] === true, mustFindLocal)
    if (open === 0) return selection
    const reason = `${selection.reason} (answer known before every lookup ended)`
    return {candidates: entries.filter((e) => known[e.index] === 'candidate'), local: selection.local, reason}
  }
  const recompute = () => {
    scheduled = false
    if (final) return
    const decisions = decide(entries, local, mustFindLocal)
    for (const [i, decision] of decisions.entries()) {
      if (decision === undefined || known[i] !== undefined) continue
      known[i] = decision
      open--
      settle[i](decision)
    }
    lookups.matters = lookupMatters(entries, local, known)
    if (open === 0) {
      run.emit({type: 'selection', ms: run.elapsed(), selection: current()})
      for (const i of entries.keys()) if (known[i] !== 'candidate') lookups.release(i)
    }
    lookups.pump()
  }
  const schedule = () => {
    if (!scheduled) queueMicrotask(recompute)
    scheduled = true
  }
  if (stop) {
    lookups.pumpOnEnd = false
    for (const [i, entry] of entries.entries()) {
      // A name equal to a stop name is the local host whatever its lookup says; a name never
      // asked for (it could not change the answer) is taken as not the local host.
      if (isLocalHost(entry, [], stop)) local[i] = true
      else void lookups.records[i].then((record) => ((local[i] = isLocalHost(entry, record?.addresses ?? [], stop)), open > 0 ? schedule() : lookups.pump()))
    }
  }
  schedule()
  return {
    decided,
    close() {
      if (final) return final
      final = current()
      lookups.close()
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
async function probeAtOnce(run: Run, lookups: Lookups, selector: Selector): Promise<Probing> {
  const servers: ServerRecord[] = []
  const probes = run.options.entries.map(async (entry, i) => {
    if ((await selector.decided[i]) !== 'candidate') return undefined
    const lookup = await lookups.records[i]
    if (lookup === undefined) return undefined // the answer was known before its turn came
    const server = await probeWithinBudget(run, entry, lookup)
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
async function probeInOrder(run: Run, lookups: Lookups, selector: Selector): Promise<Probing> {
  const servers: ServerRecord[] = []
  for (const [i, entry] of run.options.entries.entries()) {
    if ((await selector.decided[i]) !== 'candidate') continue
    const lookup = await lookups.records[i]
    if (lookup === undefined) continue
    const server = await probeWithinBudget(run, entry, lookup)
    servers.push(server)
    if (server.available) return {servers, winner: entry}
  }
  return {servers}
}

/**
 * Phase 5: the answer. No candidate available is exit 0 only if every candidate could be
 * probed: one this host lacked the descriptors or buffers to probe makes it a system error.
 */
function conclude(run: Run, probing: Probing, selection: Selection): 0 | 1 {
  if (!probing.winner) {
    for (const server of probing.servers) {
      const starved = server.attempts.find((a) => a.error && OUT_OF_RESOURCES.has(a.error))
      if (starved) {
        throw new FatalError(`system error: cannot probe ${server.entry.name} (${hostPort(starved.address, starved.port)}): ${outOfResources(starved.error!)}`)
      }
    }
  }
  const exitCode = probing.winner ? 1 : 0
  run.emit({type: 'decision', ms: run.elapsed(), winner: probing.winner?.name, exitCode, ...(selection.localNotFound ? {localNotFound: true} : {})})
  return exitCode
}

/**
 * SPEC §3: a lookup that failed for a local reason (EMFILE, …) tells nothing about its name,
 * so an answer that could rest on it is a system error: with a winner, when the failed entry
 * could exclude it were it the local host (list order before it, or a priority ≤ its own);
 * without one, when the failed entry was a candidate (it could not be probed) or the local
 * host was not found (the failed entry may be it).
 */
function failOnStarvedLookup(lookups: ReadonlyMap<Entry, Lookup>, selection: Selection, winner: Entry | undefined): void {
  const candidates = new Set(selection.candidates)
  for (const [entry, lookup] of lookups) {
    if (lookup.outcome !== 'dns-error' || !OUT_OF_RESOURCES.has(lookup.error ?? '')) continue
    const matters = winner
      ? entry.index < winner.index || (entry.prio !== undefined && winner.prio !== undefined && entry.prio <= winner.prio)
      : candidates.has(entry) || selection.localNotFound === true
    if (matters) throw new FatalError(`system error: cannot look up ${entry.name}: ${outOfResources(lookup.error!)}`)
  }
}

export async function check(options: CheckOptions, deps: CheckDeps): Promise<Report> {
  const run = startRun(options, deps)
  run.emit({type: 'entries', ms: run.elapsed(), entries: options.entries})
  const lookups = startLookups(run)
  let stopReport: Report['stops']
  let selection: Selection
  let probing: Probing
  let records: Array<LookupRecord | undefined>
  try {
    const stop = await lookupStops(run)
    stopReport = stop.report
    const selector = selectIncrementally(run, stop.stop, lookups)
    probing = await (options.sequential ? probeInOrder : probeAtOnce)(run, lookups, selector)
    selection = selector.close()
  } finally {
    // Nothing of the run outlives it: every budget ends, every lookup settles.
    run.end('cancelled')
    lookups.close()
    records = await Promise.all(lookups.records)
    run.dispose()
  }
  const lookupRecords = new Map(options.entries.flatMap((entry, i) => (entry.kind === 'name' && records[i] ? [[entry, records[i]] as const] : [])))
  failOnStarvedLookup(lookupRecords, selection, probing.winner)
  const exitCode = conclude(run, probing, selection)
  const servers = [...probing.servers].sort((a, b) => a.entry.index - b.entry.index)
  return {entries: options.entries, stops: stopReport, selection, servers, lookups: lookupRecords, winner: probing.winner, exitCode, elapsedMs: run.elapsed()}
}
