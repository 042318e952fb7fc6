"""get_stream: resolving a stream configuration mapping to a stream object, and its errors."""
import copy
import os

import pytest

from gcircus.stream import (FancyStdoutStream, FileStream, NullStream, QueueStream, StdoutStream, ThreadedStream,
                            TimedRotatingFileStream, WatchedFileStream, get_stream)

USER_MODULE = '''
class Recorder:
    def __init__(self, prefix, repeat='1'):
        self.prefix, self.repeat, self.seen = prefix, int(repeat), []

    def __call__(self, chunk):
        self.seen.append(self.prefix + chunk['data'] * self.repeat)

NOT_A_CLASS = 42
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / 'my_streams_for_gcircus.py').write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return 'my_streams_for_gcircus'


@pytest.mark.parametrize('conf', [None, {}])
def test_nothing_configured_means_no_stream(conf):
    assert get_stream(conf) is None


@pytest.mark.parametrize('name, cls', [
    ('FileStream', FileStream), ('filestream', FileStream), ('circus.stream.FileStream', FileStream),
    ('gcircus.stream.FileStream', FileStream), ('WatchedFileStream', WatchedFileStream),
    ('circus.stream.TimedRotatingFileStream', TimedRotatingFileStream), ('StdoutStream', StdoutStream),
    ('circus.stream.FancyStdoutStream', FancyStdoutStream), ('QueueStream', QueueStream),
    ('NullStream', NullStream)])
def test_builtin_class_names_resolve_to_ours(name, cls, tmp_path):
    conf = {'class': name}
    if issubclass(cls, FileStream):
        conf['filename'] = str(tmp_path / 'out.log')
    stream = get_stream(conf)
    assert type(stream) is cls
    stream.close()


def test_other_keys_become_options_and_the_callers_mapping_is_untouched(tmp_path):
    conf = {'class': 'FileStream', 'filename': str(tmp_path / 'out.log'), 'max_bytes': '1024',
            'backup_count': '3', 'time_format': '%H', 'refresh_time': '0.3'}
    original = copy.deepcopy(conf)
    stream = get_stream(conf)
    assert (stream.filename, stream.max_bytes, stream.backup_count, stream.time_format) == (
        str(tmp_path / 'out.log'), 1024, 3, '%H')
    assert conf == original     # Circus pops 'class' out of it
    stream.close()


def test_timed_rotating_options_from_ini_strings(tmp_path):
    stream = get_stream({'class': 'TimedRotatingFileStream', 'filename': str(tmp_path / 'out.log'),
                         'rotate_when': 'midnight', 'rotate_interval': '2', 'utc': 'False', 'backup_count': '7'})
    assert (stream.rotate_when, stream.rotate_interval, stream.utc, stream.backup_count) == ('MIDNIGHT', 2, False, 7)
    stream.close()


def test_dotted_user_class_gets_the_options(user_module):
    stream = get_stream({'class': user_module + '.Recorder', 'prefix': b'> ', 'repeat': '2'})
    stream({'data': b'ab', 'pid': 1, 'name': 'stdout'})
    assert stream.seen == [b'> abab']


def test_class_object_is_accepted_from_the_python_api():
    assert isinstance(get_stream({'class': QueueStream}), QueueStream)


def test_ready_made_stream_is_used_as_is():
    target = QueueStream()
    assert get_stream({'stream': target, 'refresh_time': 1}) is target


def test_filename_alone_means_a_file_stream(tmp_path):
    stream = get_stream({'filename': str(tmp_path / 'out.log'), 'max_bytes': '10'})
    assert type(stream) is FileStream and stream.max_bytes == 10
    stream.close()


def test_class_wins_over_stream_and_filename(tmp_path):
    stream = get_stream({'class': 'WatchedFileStream', 'filename': str(tmp_path / 'out.log')})
    assert type(stream) is WatchedFileStream
    stream.close()


def test_mapping_without_a_stream_is_an_error():
    with pytest.raises(ValueError, match="'class', 'stream' or 'filename'.*'max_bytes'"):
        get_stream({'max_bytes': 10})


@pytest.mark.parametrize('name, error, message', [
    ('NoSuchStream', ValueError, "unknown stream class 'NoSuchStream'"),
    ('circus.stream.NoSuchStream', ValueError, "'circus.stream.NoSuchStream'"),
    ('no_such_module_for_gcircus.Stream', ImportError, "'no_such_module_for_gcircus.Stream'"),
    ('os.NoSuchStream', ImportError, "'os.NoSuchStream'"),
    ('gcircus.stream.NoSuchStream', ImportError, "'gcircus.stream.NoSuchStream'"),
])
def test_unknown_class_names_the_class(name, error, message):
    with pytest.raises(error, match=message):
        get_stream({'class': name})


def test_non_callable_or_mismatched_user_classes_are_reported(user_module):
    with pytest.raises(ValueError, match='NOT_A_CLASS.*not callable'):
        get_stream({'class': user_module + '.NOT_A_CLASS'})
    with pytest.raises(ValueError, match='Recorder'):
        get_stream({'class': user_module + '.Recorder', 'colour': 'red'})
    with pytest.raises(ValueError, match='not callable'):
        get_stream({'stream': 'not a stream'})


def test_thread_backend_wraps_the_stream(tmp_path):
    path = tmp_path / 'out.log'
    stream = get_stream({'filename': str(path)}, backend='thread')
    assert isinstance(stream, ThreadedStream) and type(stream.inner) is FileStream
    stream({'data': b'through the threadpool', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert path.read_bytes() == b'through the threadpool'


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="'threads'"):
        get_stream({'class': 'NullStream'}, backend='threads')


def test_unknown_options_are_logged_not_fatal(tmp_path, caplog):
    stream = get_stream({'filename': str(tmp_path / 'out.log'), 'max_byte': '10'})
    assert 'max_byte' in caplog.text
    stream.close()
    assert os.path.exists(str(tmp_path / 'out.log'))


def test_the_package_names_every_stream_class_and_the_builtin_table_holds_them():
    import gcircus.stream
    from gcircus.stream import file, memory, rotating, console, threaded
    assert gcircus.stream.FileStream is file.FileStream
    assert gcircus.stream.ThreadedStream is threaded.ThreadedStream
    assert gcircus.stream.BUILTIN_STREAMS == {
        'FileStream': file.FileStream, 'WatchedFileStream': file.WatchedFileStream,
        'TimedRotatingFileStream': rotating.TimedRotatingFileStream, 'StdoutStream': console.StdoutStream,
        'FancyStdoutStream': console.FancyStdoutStream, 'QueueStream': memory.QueueStream,
        'NullStream': memory.NullStream}
    assert set(gcircus.stream.__all__) <= set(dir(gcircus.stream))
    with pytest.raises(ImportError):      # the package's __getattr__ says AttributeError, import says this
        from gcircus.stream import NoSuchStream  # noqa: F401
