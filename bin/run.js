#!/usr/bin/env node
// The exit status is always 0, 1 or 2 (SPEC §6). First thing, before anything is loaded: every
// signal whose default action ends the process and that a process may catch ends it with
// status 2 and nothing more on stdout (the kernel closes every socket at exit); SIGUSR1 too, so
// that it never opens Node's inspector (a listener replaces Node's own SIGUSR1 handler). What is
// left: a signal that arrives before node runs this file (node's own start, about a bare
// `node -e ''`: bench/startup-window.js) has the effect node gives it (SIGPIPE is ignored;
// SIGUSR1: see below).
'use strict'
const SIGNALS = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTRAP', 'SIGABRT', 'SIGTERM', 'SIGPIPE', 'SIGALRM', 'SIGUSR1', 'SIGUSR2',
  'SIGVTALRM', 'SIGPROF', 'SIGXCPU', 'SIGXFSZ', 'SIGPOLL', 'SIGSYS', 'SIGSTKFLT', 'SIGPWR']
// A SIGPIPE that our own write to a closed stdout or stderr raised comes after that write's
// EPIPE (the error is emitted on the next tick, the signal only from the event loop): stderr
// is diagnostics and never changes the answer; stdout decides, and an answer that cannot be
// written is reported where it is written (src/cli/run.ts). A SIGPIPE from outside ends the run.
let brokenPipe = false
const onBrokenPipe = (error) => {
  if (error?.code === 'EPIPE') brokenPipe = true
}
// Node makes process.stdout and process.stderr on first use (loading its streams costs ~2 ms,
// which a run that writes nothing need not pay): the listener is added when each is made.
for (const name of ['stdout', 'stderr']) {
  const made = Object.getOwnPropertyDescriptor(process, name).get
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: true,
    get() {
      const stream = made.call(process)
      Object.defineProperty(process, name, {configurable: true, enumerable: true, get: () => stream})
      stream.on('error', onBrokenPipe)
      return stream
    },
  })
}
const onSignal = (signal) => (signal === 'SIGPIPE' && brokenPipe) || process.exit(2)
// V8's sampling profiler (`node --cpu-prof`, `--prof`) ticks with SIGPROF: leave it to V8 then.
const profiling = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => /^--(cpu-)?prof\b/.test(a))
for (const signal of SIGNALS) if (!(profiling && signal === 'SIGPROF')) process.on(signal, onSignal)
// A SIGUSR1 that came while node was still starting found node's own handler, which opens the
// inspector from a thread of its own: usually by the first turn of the event loop, where it is
// closed before the run starts; on a loaded machine later, so it is looked for again every
// 20 ms during the first seconds. Either way the process ends as for any signal (exit 2).
// (The binding answers in ~0.1 ms; loading node:inspector to ask costs ~2 ms of every run. It
// is deprecated only under --pending-deprecation, where node:inspector is asked instead.)
const nodeFlags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ')
setImmediate(() => {
  closeInspector()
  const watch = setInterval(closeInspector, 20).unref()
  setTimeout(() => clearInterval(watch), 5000).unref()
  run().catch(lastWord)
})
function closeInspector() {
  let url
  try {
    url = /-deprecation\b/.test(nodeFlags) ? require('node:inspector').url() : process.binding('inspector').url()
  } catch {
    url = require('node:inspector').url()
  }
  if (url === undefined) return
  require('node:inspector').close()
  process.exit(2)
}
const lastWord = (error) => {
  const text = String(error?.message ?? error).split('\n')[0].replace(/[\u0000-\u001f\u007f-\u009f\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  process.stderr.write(`smtpdcheck: ${error?.oclif ? '' : 'system error: '}${text.slice(0, 400)}\n`)
  process.exit(2)
}
process.on('uncaughtException', lastWord)
process.on('unhandledRejection', lastWord)

// Routing (SPEC §2): a first word exactly one of SUBCOMMANDS goes to oclif's command of that
// name; every other command line is the default command, run by the fast bundle
// dist/smtpdcheck.cjs (src/cli/main.ts, no oclif); a line it leaves to oclif (--help,
// --version) is then run by oclif itself, unchanged.
// This file and the bundle are CommonJS (bin/package.json) so that a run does not pay for
// node's ES module loader.
const {join} = require('node:path')

const root = join(__dirname, '..')
const argv = process.argv.slice(2)

/**
 * `smtpdcheck autocomplete [SHELL]`, `smtpdcheck autocomplete script SHELL`: our own bash and
 * zsh completion, made from the flag table (src/cli/completion.ts), offering SUBCOMMANDS as
 * first words. A bad word is one line `smtpdcheck: …`, exit 2.
 */
async function autocomplete() {
  const [{autocomplete: answer}, {failRun}] = await Promise.all([import('../dist/cli/completion.js'), import('../dist/cli/run.js')])
  try {
    process.stdout.write(answer(argv.slice(1), Object.keys(SUBCOMMANDS)))
  } catch (error) {
    failRun(error, [])
  }
}

/** `smtpdcheck serve …`: the policy server (SPEC §11); it handles SIGTERM/SIGINT/SIGHUP/SIGUSR1 itself once it runs. */
async function serve() {
  const {default: Serve} = await import('../dist/commands/serve.js')
  await Serve.run(argv.slice(1), root)
}

/** First word → its subcommand; one more subcommand is one more line. */
const SUBCOMMANDS = {
  autocomplete,
  serve,
}

async function run() {
  if (Object.hasOwn(SUBCOMMANDS, argv[0])) return SUBCOMMANDS[argv[0]]()
  if (await require('../dist/smtpdcheck.cjs').main(argv)) return
  const [{execute}, {flushStdout}] = await Promise.all([import('@oclif/core'), import('../dist/cli/run.js')])
  await execute({dir: root, args: argv})
  await flushStdout()
}

