"""Circus's dotted names resolve to ours; import errors name what was not found."""
import pytest

from gcircus.aliases import canonical_name, import_dotted
from gcircus.stream import FileStream


def test_circus_names_map_to_ours():
    assert canonical_name("circus.plugins.flapping.Flapping") == "gcircus.plugins.flapping.Flapping"
    assert canonical_name("circus.stream.FileStream") == "gcircus.stream.FileStream"
    assert canonical_name("mycompany.hooks.check") == "mycompany.hooks.check"


def test_import_dotted_forms():
    assert import_dotted("circus.stream.FileStream") is FileStream
    assert import_dotted("gcircus.stream:FileStream") is FileStream
    assert import_dotted("os.path.join") is __import__("os").path.join


@pytest.mark.parametrize("name,message", [
    ("nodots", "is not a dotted name"),
    ("no_such_module_xyz.thing", "cannot import hook 'no_such_module_xyz.thing'"),
    ("os.no_such_attr", "os has no attribute 'no_such_attr'"),
])
def test_import_errors_name_the_target(name, message):
    with pytest.raises(ImportError, match=message):
        import_dotted(name, "hook")
