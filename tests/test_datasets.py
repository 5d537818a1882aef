"""Every listed dataset loads, coerces through its own schema without a reject, and its schema round-trips through JSON.

Benchmark tables need the data folder (../shared/datasets, settings.ini's data_dir or $TABSYNTH_DATA_DIR);
where it is absent their tests are skipped, and `pytest -rs` says so.
"""
import pytest
from tabsynth.core import Schema
from tabsynth.datasets import data_dir, list_datasets, load

LISTED = list_datasets()


@pytest.mark.parametrize('name', list(LISTED.index))
def test_listed_dataset_loads_and_round_trips(name):
    if not LISTED.loc[name, 'available']:
        folder, why = data_dir()
        pytest.skip(f"benchmark data folder {folder} ({why}) does not hold {name}")
    ds = load(name)
    assert Schema.from_json(ds.schema.to_json()) == ds.schema
    valid, rejects = ds.schema.coerce(ds.frame)
    assert len(rejects) == 0, rejects.head()
    assert len(valid) == len(ds.frame) == LISTED.loc[name, 'rows']
