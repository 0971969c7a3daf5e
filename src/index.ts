// The public entry of the package (`import … from 'smtpdcheck'`): the library over src/core
// only (never the CLI, the policy server or oclif). Importing it has no side effect.
export {check, createChecker} from './core/library.js'
export type {CacheOptions, Checker, CheckerOptions, CheckOptions, ProbeOptions, Question, Report, Verdict} from './core/library.js'
export {FatalError, UsageError} from './core/errors.js'
export type {FailureKind} from './core/errors.js'
