/**
 * Configuration of plexd (config.md): schema, loading with env/flag precedence, errors with
 * file positions, redacted dump, reload diff, and the `plexd config` commands.
 */
export { ConfigSchema, ConfigObjectSchema, BUILTIN_ACTIONS, type Config, type ConfigInput } from "./schema.ts";
export { ConfigError, EXIT_CONFIG, formatIssue, type ConfigIssue, type ConfigWarning } from "./errors.ts";
export {
  loadConfig,
  buildConfig,
  resolveConfigPath,
  DEFAULT_CONFIG_PATH,
  type LoadOptions,
  type LoadedConfig,
  type BuildInput,
  type ConfigSource,
} from "./load.ts";
export { type ConfigFlags, type Env, type OtelEnv } from "./env.ts";
export { parseYaml, type ParsedYaml, type Position } from "./yaml.ts";
export { dumpConfig, displayConfig, nonDefaults, defaultConfig, diffConfig, RELOADABLE_KEYS, type DumpOptions, type KeyValue } from "./dump.ts";
export { redactUrl, REDACTED, SECRET_KEY_NAME, type Display } from "./redact.ts";
export { configValidate, configDump, configDumpDocument, type CommandResult, type ConfigCommandOptions, type ConfigCommandDeps } from "./command.ts";
export { parseDuration, formatDuration, parseSize, formatSize, parseCpu, parseEnvBool } from "./units.ts";
export { allKeys, envKeys, envName, type KeyInfo } from "./catalog.ts";
export { tracingEnabled, tracesUrl } from "./tracing.ts";
