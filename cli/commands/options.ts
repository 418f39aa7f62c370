import { InvalidArgumentError, type Command } from 'commander';

/** A parser for an integer flag in a range, with an error that names the flag. */
export function intOption(flag: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}, not "${raw}"`);
    return n;
  };
}

export function logOptions(cmd: Command): Command {
  return cmd
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--log-format <format>', 'pretty (default on a terminal) or json');
}
