export * from './topics.js';
export * from './messages.js';
export * from './public-alerts.js';
export * from './agency.js';
export * from './time-series.js';
export * from './bounds.js';
