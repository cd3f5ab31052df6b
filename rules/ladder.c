/* ladder: escalation decisions. See ladder.h. */
#include "ladder.h"

#include "calendar.h"

int64_t
ladder_next_step(const struct ladder *l, const struct calendar *cal,
    int level, int64_t since)
{
	if (level < 1 || (size_t)level >= l->n)
		return 0;
	const struct ladder_level *next = &l->levels[level];
	if (next->after <= 0)
		return 0;
	return calendar_add(cal, since, next->after);
}

int
ladder_steps_on_breach(const struct ladder *l, int level, unsigned clock_bit)
{
	if (level < 1 || (size_t)level >= l->n)
		return 0;
	return (l->levels[level].on_breach & clock_bit) != 0;
}

int
ladder_start_level(const struct ladder *l, int start_level)
{
	if (start_level < 1)
		return 1;
	return (size_t)start_level <= l->n ? start_level : (int)l->n;
}
