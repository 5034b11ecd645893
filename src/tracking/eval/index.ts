/** Tracking quality: CLEAR-MOT and identity metrics, and synthetic scenes with known truth to measure them on. */
export { clearMot, type ClearMotResult } from './clear-mot.js';
export { identityMetrics, type IdentityResult } from './identity.js';
export { sumClearMot, sumIdentity, type IdentityScores } from './combine.js';
export { DEFAULT_IOU_THRESHOLD, type EvalBox, type EvalFrame, type MatchOptions } from './eval-frame.js';
export { DEFAULT_NOISE, type DetectionNoise, type SceneFrame } from './render-frame.js';
export { SCENES, crossingScene, denseScene, droppedFramesScene, occlusionScene, syntheticScenes, type Scene, type SceneName, type SceneOptions } from './synthetic-scenes.js';
export { runScene, type RunSceneOptions } from './run-scene.js';
export { DEFAULT_EVAL_SEEDS, evaluateTracker, type EvaluateOptions, type SceneScore } from './evaluate-tracker.js';
export { seededRng, type Rng } from './seeded-random.js';
