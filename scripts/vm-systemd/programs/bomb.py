# A fork bomb: os.fork fails at the pids limit (BlockingIOError) -> runtime_error.
import os
while True:
    os.fork()
