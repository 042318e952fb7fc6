"""Circus's info formatting."""
from gcircus.supervision.procinfo import bytes2human, format_cpu_time


def test_bytes2human():
    assert bytes2human(1023) == "1023B"
    assert bytes2human(10000) == "9.77K"
    assert bytes2human(1.34 * 1024 * 1024) == "1.34M"


def test_cpu_time_format():
    assert format_cpu_time((61.5, 0.0)) == "1:01.50"
    assert format_cpu_time((3600 + 5.25,)) == "0:05.25"  # hours dropped, as Circus prints it
    # float sums are rounded to the microsecond first: 1.13 is not printed as 1.12
    assert format_cpu_time((1.13,)) == "0:01.13" and format_cpu_time((0.1, 0.2)) == "0:00.30"
    assert format_cpu_time((59.9999999,)) == "1:00.0"     # the carry reaches the seconds and minutes


def test_sampler_reads_the_same_identity_as_psutil_from_one_proc_scan():
    import os

    import psutil

    from gcircus.supervision.sampler import ProcessSampler, ProcTable
    table = ProcTable()
    me = psutil.Process(os.getpid())
    assert os.getpid() in table.children_of(os.getppid())
    info = ProcessSampler().sample("me", os.getpid(), table)
    assert info["username"] == me.username() and info["pid"] == os.getpid()
    assert abs(info["create_time"] - me.create_time()) < 0.05
    assert info["cmdline"] == os.path.basename(me.cmdline()[0].split()[0])
    assert info["cpu"] == 0.0 and info["children"] == []          # the first sample, as Circus's
