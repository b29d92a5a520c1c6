import { endpointUrl, kitRows } from '../request';

describe('endpointUrl', () => {
  it('joins base url, namespace and endpoint, and encodes the query', () => {
    expect(
      endpointUrl('http://h/user/x/', 'runs', {
        experiment: '1',
        filter: "a = 'b c'",
        page_token: ''
      })
    ).toBe(
      "http://h/user/x/mlflow-modelkit/runs?experiment=1&filter=a%20%3D%20'b%20c'"
    );
    expect(endpointUrl('/', 'jobs/abc')).toBe('/mlflow-modelkit/jobs/abc');
  });
});

describe('kitRows', () => {
  it('accepts a list or {kits}', () => {
    expect(kitRows([{ digest: 'a' }])).toEqual([{ digest: 'a' }]);
    expect(kitRows({ kits: [{ digest: 'b' }] })).toEqual([{ digest: 'b' }]);
    expect(kitRows(null)).toEqual([]);
  });
});
