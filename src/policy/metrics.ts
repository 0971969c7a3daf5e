// `serve --metrics inet:HOST:PORT` (SPEC §11): the counters of stats.ts as Prometheus text
// (exposition format 0.0.4) at GET /metrics; anything else is 404. Written by hand: a dozen
// numbers from one table need no client library (prom-client would add four packages to
// serve for what is one function here), and every label value is our own word.
import http from 'node:http'

import {FatalError} from '../core/errors.js'
import {listenText, type Listen} from './listen.js'
import {DECISION_KINDS, type Snapshot} from './stats.js'

type Metric = readonly [name: string, type: 'counter' | 'gauge' | 'summary', help: string, samples: ReadonlyArray<readonly [labels: string, value: number]>]

/** The exposition text of one snapshot. */
export function exposition(s: Snapshot): string {
  const metrics: Metric[] = [
    ['smtpdcheck_requests_total', 'counter', 'Policy requests answered.', [['', s.requests]]],
    ['smtpdcheck_decisions_total', 'counter', 'Requests answered, by how: defer, dunno, timeout (DUNNO past --timeout), error (DUNNO on a failure), not-asked (not an RCPT request with a recipient domain).', DECISION_KINDS.map((k) => [`{decision="${k}"}`, s.decisions[k]] as const)],
    ['smtpdcheck_cache_hits_total', 'counter', 'Decisions answered from remembered outcomes or a shared decision.', [['', s.cacheHits]]],
    ['smtpdcheck_probes_total', 'counter', 'SMTP connections made to probe a server (background revalidations included).', [['', s.probes]]],
    ['smtpdcheck_revalidations_total', 'counter', 'Background probes of a remembered available server.', [['', s.revalidations]]],
    ['smtpdcheck_timeouts_total', 'counter', 'Decisions not made within --timeout (answered DUNNO).', [['', s.timeouts]]],
    ['smtpdcheck_reloads_total', 'counter', 'SIGHUP reloads.', [['', s.reloads]]],
    ['smtpdcheck_decision_seconds', 'summary', 'Time from request to decision, over the latest 4096 decisions.', [['{quantile="0.5"}', s.p50Ms / 1000], ['{quantile="0.99"}', s.p99Ms / 1000]]],
    ['smtpdcheck_connections', 'gauge', 'Policy connections open now.', [['', s.connections]]],
    ['smtpdcheck_evictions_total', 'counter', 'Policy connections closed because of --max-connections.', [['', s.evictions]]],
    ['smtpdcheck_uptime_seconds', 'gauge', 'Seconds since serve started.', [['', s.uptimeS]]],
  ]
  const lines: string[] = []
  for (const [name, type, help, samples] of metrics) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${Number.isNaN(value) ? 'NaN' : value}`)
    if (type === 'summary') lines.push(`${name}_sum ${s.timedMs / 1000}`, `${name}_count ${s.timed}`)
  }
  return `${lines.join('\n')}\n`
}

export interface MetricsServer {
  readonly endpoint: string
  close(): Promise<void>
}

/** Serve `snapshot()` at GET /metrics on `listen` (an inet endpoint); a few connections at most. */
export async function startMetrics(listen: Listen & {kind: 'inet'}, snapshot: () => Snapshot): Promise<MetricsServer> {
  const server = http.createServer({requestTimeout: 10_000, headersTimeout: 5000}, (request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if ((request.method === 'GET' || request.method === 'HEAD') && path === '/metrics') {
      response.writeHead(200, {'content-type': 'text/plain; version=0.0.4; charset=utf-8'})
      return void response.end(request.method === 'HEAD' ? undefined : exposition(snapshot()))
    }
    response.writeHead(404, {'content-type': 'text/plain; charset=utf-8'})
    response.end('not found: the metrics are at GET /metrics\n')
  })
  server.maxConnections = 32
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new FatalError(`cannot listen on --metrics ${listenText(listen)}: ${error.code ?? error.message}`)))
    server.listen({host: listen.host, port: listen.port, ipv6Only: listen.host.includes(':')}, resolve)
  })
  server.on('error', () => {})
  const address = server.address() as import('node:net').AddressInfo
  return {
    endpoint: listenText({kind: 'inet', host: address.address, port: address.port}),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
