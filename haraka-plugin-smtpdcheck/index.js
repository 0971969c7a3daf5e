'use strict'
// haraka-plugin-smtpdcheck: in the rcpt hook, for the domains this host is a secondary MX
// for, DENYSOFT "Please use server NAME" while a more preferred MX of the domain is up. The
// decision is the smtpdcheck library's long-lived checker (one per Haraka process: one
// cache, probes shared in flight, DNS answers held for their TTL). Any error or timeout lets
// the recipient through (fail open) and is logged. Configuration: config/smtpdcheck.ini.

/** The smtpdcheck library (ESM), loaded once. */
let library

exports.register = function () {
  if (library === undefined) {
    library = import('smtpdcheck')
    library.catch((error) => this.logcrit(`cannot load the smtpdcheck library (recipients go unchecked): ${error.message}`))
  }
  this.load_smtpdcheck_ini()
  // Before the plugin that accepts recipients (rcpt_to.in_host_list, qmail-deliverable, …),
  // whatever their order in config/plugins: a recipient it accepts is past every later hook.
  this.register_hook('rcpt', 'check_rcpt', RCPT_PRIORITY)
}

/** Haraka runs a hook's plugins in ascending priority (default 0, range -100..100). */
const RCPT_PRIORITY = -50

/** config/smtpdcheck.ini → this.cfg; re-read when the file changes (the checker is then rebuilt). */
exports.load_smtpdcheck_ini = function () {
  const ini = this.config.get('smtpdcheck.ini', {booleans: ['+cache.enabled']}, () => this.load_smtpdcheck_ini())
  const main = ini.main ?? {}
  const cache = ini.cache ?? {}
  this.cfg = {
    domains: new Set(Object.keys(ini.domains ?? {}).map(canonical)),
    identities: listOf(main.identities),
    timeout: main.timeout ?? 10,
    options: {
      timeout: main.timeout,
      port: main.port,
      attemptDelay: main.attempt_delay,
      family: main.family === undefined || main.family === '' ? undefined : main.family,
      dnsServer: main.dns_server || undefined,
      cache: cache.enabled === false ? false : {negativeTtl: cache.negative_ttl, positiveTtl: cache.positive_ttl},
    },
  }
  this.retire_checker()
}

/** The checker for the configuration in force, built at the first recipient that needs it. */
exports.get_checker = async function () {
  const {createChecker} = await library
  this.checker ??= createChecker({...this.cfg.options, identities: this.cfg.identities})
  return this.checker
}

/** Close the checker (configuration changed, or Haraka shuts down); questions in flight fail open. */
exports.retire_checker = function () {
  const old = this.checker
  this.checker = undefined
  if (old) old.close().catch((error) => this.logerror(`closing the checker: ${error.message}`))
}

exports.shutdown = function () {
  this.retire_checker()
}

/** The rcpt hook: a relaying client (ours: authenticated, relay ACL) is not checked, nor a domain not configured. */
exports.check_rcpt = function (next, connection, params) {
  const domain = canonical(params[0]?.host ?? '')
  if (connection.relaying || !this.cfg.domains.has(domain)) return next()
  const started = Date.now()
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(new Error(`no decision within ${Math.round(deadlineMs(this) / 1000)}s`)), deadlineMs(this))
  const identities = [connection.local?.ip].filter(Boolean)
  const log = (level, text) => connection[level](this, `domain="${domain}" ${text} ms=${Date.now() - started}`)
  this.get_checker()
    .then((checker) => checker.check({mx: domain, identities, signal: deadline.signal}))
    .then(
      (verdict) => {
        if (verdict.server === null) {
          log('loginfo', `decision=accept reason="${verdict.reason}"`)
          return next()
        }
        log('loginfo', `decision=defer server="${verdict.server}"`)
        next(DENYSOFT, `Please use server ${verdict.server}`)
      },
      (error) => {
        log('logwarn', `decision=accept reason="fail open: ${error?.name ?? 'Error'}: ${error?.message ?? error}"`)
        next()
      },
    )
    .finally(() => clearTimeout(timer))
}

/**
 * The whole decision's deadline in ms: `timeout` (0: none), and always a second less than
 * Haraka's own timeout for this plugin, which would answer DENYSOFT (fail closed).
 */
function deadlineMs(plugin) {
  const haraka = Math.max(0.5, plugin.timeout - 1)
  const own = Number(plugin.cfg.timeout) > 0 ? Number(plugin.cfg.timeout) : haraka
  return Math.min(own, haraka) * 1000
}

/** A domain as compared: lower case, no trailing dot. */
function canonical(domain) {
  return String(domain).toLowerCase().replace(/\.$/, '')
}

/** An ini value that is a list: `key[]=` lines, or one comma- or space-separated value. */
function listOf(value) {
  if (value === undefined || value === null || value === '') return []
  const items = Array.isArray(value) ? value : String(value).split(/[\s,]+/)
  return items.map(String).filter((item) => item !== '')
}
