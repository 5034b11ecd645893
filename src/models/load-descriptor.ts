import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { VisionpipeError } from '../errors.js';
import { ModelDescriptorSchema, type ModelDescriptor } from './descriptor-schema.js';

/** The project's models/ folder, where the bundled descriptors live. */
export const MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

const require = createRequire(import.meta.url);

/** Names of the descriptors in models/ (file names without .yaml). */
export function listModelNames(dir = MODELS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/**
 * Finds a descriptor by name (models/<name>.yaml) or path, validates it, resolves the model path
 * (checking the file exists) and reads the labels.
 */
export function loadModelDescriptor(nameOrPath: string, dir = MODELS_DIR): ModelDescriptor {
  const file = locate(nameOrPath, dir);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new VisionpipeError('VP_MODEL_INVALID', `Cannot parse the model descriptor ${file}`, { cause });
  }
  const result = ModelDescriptorSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
    throw new VisionpipeError('VP_MODEL_INVALID', `Invalid model descriptor ${file}:\n  - ${lines.join('\n  - ')}`, {
      hint: 'Fix the descriptor; models/README.md documents each field.',
    });
  }
  const base = dirname(file);
  const fields = result.data;
  const modelPath = resolveAssetPath(fields.path, base);
  if (!existsSync(modelPath)) {
    throw new VisionpipeError('VP_MODEL_NOT_FOUND', `The model file of descriptor "${fields.name}" does not exist`, {
      value: modelPath,
      hint: fields.path.includes('shared/')
        ? 'This model lives in ../shared (the project’s shared test assets), which is absent here.'
        : 'Reinstall (bash scripts/setup.sh) or fix `path` in the descriptor.',
    });
  }
  const labels = typeof fields.labels === 'string' ? readLabels(resolveAssetPath(fields.labels, base)) : fields.labels;
  return Object.freeze({ ...fields, modelPath, descriptorPath: file, labels: Object.freeze([...labels]) });
}

function locate(nameOrPath: string, dir: string): string {
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml');
  const candidate = looksLikePath ? resolve(nameOrPath) : join(dir, `${nameOrPath}.yaml`);
  if (existsSync(candidate)) return candidate;
  const known = listModelNames(dir);
  throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'No such model descriptor', {
    value: nameOrPath,
    expected: `one of ${known.map((n) => `"${n}"`).join(', ') || '(none installed)'} or a path to a descriptor .yaml`,
  });
}

/** `package:@scope/pkg/sub/path` → inside node_modules; relative → against `base`. */
export function resolveAssetPath(path: string, base: string): string {
  if (path.startsWith('package:')) {
    const spec = path.slice('package:'.length);
    const parts = spec.split('/');
    const nameLength = spec.startsWith('@') ? 2 : 1;
    const pkg = parts.slice(0, nameLength).join('/');
    const rest = parts.slice(nameLength).join('/');
    let pkgDir: string;
    try {
      pkgDir = dirname(require.resolve(`${pkg}/package.json`));
    } catch (cause) {
      throw new VisionpipeError('VP_MODEL_NOT_FOUND', `The npm package ${pkg} that ships this model is not installed`, {
        value: path,
        hint: 'Run `npm ci` (or bash scripts/setup.sh).',
        cause,
      });
    }
    return join(pkgDir, rest);
  }
  return isAbsolute(path) ? path : resolve(base, path);
}

function readLabels(file: string): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
  } catch (cause) {
    throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'Cannot read the labels file', { value: file, cause });
  }
}
