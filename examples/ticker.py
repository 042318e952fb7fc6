"""A worker that reports once a second: its output is captured by gcircus's FileStream."""
import os
import time

count = 0
while True:
    count += 1
    print("tick %d from pid %d" % (count, os.getpid()))
    time.sleep(1)
