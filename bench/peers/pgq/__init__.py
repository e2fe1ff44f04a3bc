"""pgqueuer: asyncio workers (asyncpg), enqueued through its synchronous psycopg driver."""
