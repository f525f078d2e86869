/** Lambda entry point of `prepare`: cold start reads the environment and the baked config. */
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { PrepareEnvironment } from './environment.js';
import { makeHandler } from './handler.js';

export const handler = makeHandler({ config: bakedConfig(), environment: readEnvironment(PrepareEnvironment) });
