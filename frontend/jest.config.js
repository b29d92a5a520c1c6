/**
 * Unit tests of the pure modules (format, badges, tableState, poll, stages, request URL building):
 * ts-jest in node, no JupyterLab runtime. `jlpm test`.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': [
      'ts-jest',
      { tsconfig: 'tsconfig.test.json', diagnostics: true }
    ]
  },
  moduleFileExtensions: ['ts', 'tsx', 'js', 'json']
};
