#!/usr/bin/env node
// Routing (SPEC §2): only a first word exactly `autocomplete` is the subcommand (oclif's
// plugin-autocomplete); every other command line is the one default command. That command
// first runs from the fast bundle dist/smtpdcheck.cjs, which does not load oclif; a command
// line it leaves to oclif (--help, --version, an unusual or wrong flag: see
// src/lite/oclif.ts) is then run by oclif itself, unchanged.
// This file and the bundle are CommonJS (bin/package.json) so that a run does not pay for
// node's ES module loader.
'use strict'
const {join} = require('node:path')

const root = join(__dirname, '..')
const argv = process.argv.slice(2)

async function oclif() {
  const {Config, execute} = await import('@oclif/core')
  if (argv[0] !== 'autocomplete') return execute({dir: root, args: argv})
  const {normalizeArgv} = await import('@oclif/core/help')
  const config = await Config.load(root)
  const [id, ...rest] = normalizeArgv(config, argv)
  return config.runCommand(id, rest)
}

async function run() {
  if (argv[0] !== 'autocomplete' && (await require('../dist/smtpdcheck.cjs').main(argv))) return
  await oclif()
}

run().catch((error) => {
  process.stderr.write(`smtpdcheck: system error: ${String(error?.message ?? error).split('\n')[0]}\n`)
  process.exit(2)
})
