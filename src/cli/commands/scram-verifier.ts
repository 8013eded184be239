import { PgreplError } from '../../errors.js';
import { scramVerifier } from '../../postgres/scram-verifier.js';

/**
 * `scram-verifier`: reads a password on stdin (never argv: it would show in `ps`) and prints its
 * SCRAM-SHA-256 verifier, which a server stores instead of the password (`render conf`'s .env).
 */
export async function runScramVerifier(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '')
    throw new PgreplError(
      'E_USAGE',
      'give the password on standard input: printf %s "$PASSWORD" | pgrepl scram-verifier',
    );
  process.stdout.write(`${scramVerifier(password)}\n`);
  return 0;
}
