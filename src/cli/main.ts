/**
 * The `kassa` command. Human output by default; `--json` prints one JSON object on stdout.
 * Errors: one line on stderr and a non-zero exit code (2 for usage errors).
 * The commands are listed in ./registry.ts; a command's module is imported only when it runs.
 */
import { parseArgs } from 'node:util';
import { fail, UsageError } from './util.ts';
import { COMMANDS, commandHelp, helpText, usageLine } from './registry.ts';

const isHelp = (a: string | undefined) => a === '--help' || a === '-h';

async function main(argv: string[]): Promise<void> {
  const [group, sub] = argv;
  if (!group || isHelp(group)) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  if (group === 'help') {
    const name = argv.slice(1).join(' ');
    if (!name) process.stdout.write(helpText() + '\n');
    else if (COMMANDS[name]) process.stdout.write(commandHelp(name, COMMANDS[name]) + '\n');
    else throw new UsageError(`unknown command "${name}". Run "kassa help".`);
    return;
  }
  const two = `${group} ${sub ?? ''}`;
  const name = COMMANDS[two] ? two : COMMANDS[group] ? group : null;
  if (!name) {
    const groupCommands = Object.keys(COMMANDS).filter((n) => n.startsWith(`${group} `));
    if (groupCommands.length > 0 && (sub === undefined || isHelp(sub))) {
      process.stdout.write(groupCommands.map((n) => `${usageLine(n, COMMANDS[n]!)}\n    ${COMMANDS[n]!.summary}`).join('\n') + '\n');
      if (sub === undefined) process.exitCode = 2;
      return;
    }
    throw new UsageError(`unknown command "${argv.join(' ')}". Run "kassa help".`);
  }
  const info = COMMANDS[name]!;
  const args = argv.slice(name.split(' ').length);
  if (args.some(isHelp)) {
    process.stdout.write(commandHelp(name, info) + '\n');
    return;
  }
  const cmd = (await info.load()).commands[name];
  if (!cmd) throw new Error(`kassa ${name}: its module has no such command`);
  let parsed;
  try {
    parsed = parseArgs({ args, options: cmd.options ?? {}, allowPositionals: cmd.positionals ?? false, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}. Run "kassa ${name} --help".`);
  }
  await cmd.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}

main(process.argv.slice(2)).catch(fail);
