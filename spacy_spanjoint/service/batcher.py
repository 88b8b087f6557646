"""Run the pipeline off the event loop, on batches of the texts of concurrent requests.

One thread owns the pipeline (a spaCy pipeline is not meant to be called from
several threads at once). While it annotates one batch, new requests queue;
the next batch takes everything that waits, up to `max_batch` texts. A single
client therefore waits for no timer, and many clients share larger batches.
The event loop only queues and answers, so `/health` and request parsing
never wait for the model.
"""
import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Tuple


class Overloaded(Exception):
    """More texts are waiting than the service accepts; the client should retry later."""


class Batcher:
    """Queues texts and hands them to `annotate` in batches, on one worker thread."""

    def __init__(self, annotate: Callable[[List[str]], List[Any]], max_batch: int = 64, max_queued: int = 1024) -> None:
        """Set up the batcher; `start` it inside the event loop.

        annotate (Callable[[List[str]], List[Any]]): Turns texts into one result each.
        max_batch (int): Texts per call of `annotate` (one request's texts are never split).
        max_queued (int): Texts waiting or in work beyond which `submit` raises `Overloaded`.
        """
        self.annotate = annotate
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.queued = 0
        self._queue: Optional["asyncio.Queue[Tuple[List[str], asyncio.Future]]"] = None
        self._task: Optional[asyncio.Task] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanjoint-pipeline")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def submit(self, texts: List[str]) -> List[Any]:
        """The results of `annotate` for the texts, in order.

        texts (List[str]): The texts of one request.
        RETURNS (List[Any]): One result per text.
        """
        assert self._queue is not None, "start the batcher first"
        if self.queued + len(texts) > self.max_queued:
            raise Overloaded(f"{self.queued} texts are waiting")
        future = asyncio.get_running_loop().create_future()
        self.queued += len(texts)
        try:
            self._queue.put_nowait((texts, future))
            return await future
        finally:
            self.queued -= len(texts)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            size = len(items[0][0])
            while size < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                items.append(item)
                size += len(item[0])
            items = [(texts, future) for texts, future in items if not future.done()]  # gone clients
            if not items:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self.annotate, [t for texts, _ in items for t in texts])
            except Exception:
                # Something in the batch broke the pipeline: each request alone, so only its own fails.
                for texts, future in items:
                    await self._answer_alone(loop, texts, future)
                continue
            start = 0
            for texts, future in items:
                if not future.done():
                    future.set_result(results[start : start + len(texts)])
                start += len(texts)

    async def _answer_alone(self, loop: asyncio.AbstractEventLoop, texts: List[str], future: asyncio.Future) -> None:
        try:
            result = await loop.run_in_executor(self._executor, self.annotate, texts)
        except Exception as err:
            if not future.done():
                future.set_exception(err)
        else:
            if not future.done():
                future.set_result(result)
