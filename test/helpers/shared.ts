import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The project's shared assets (real models and clips), beside the checkout; absent in a user's fresh clone. */
export const SHARED = resolve(ROOT, '..', 'shared');
export const HAS_SHARED = existsSync(resolve(SHARED, 'samples', 'vtest.avi'));
export const SKIP_SHARED_REASON = `../shared is absent (${SHARED}): tests on the shared sample clips and models are skipped`;
export const VTEST = resolve(SHARED, 'samples', 'vtest.avi');
export const MEGAMIND = resolve(SHARED, 'samples', 'Megamind.avi');

if (!HAS_SHARED) console.warn(`[visionpipe tests] ${SKIP_SHARED_REASON}`);
