/* layerctl run's options: --env and --bind lists, parsed and freed. */
#include "layerctl/runopt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"

int runopt_add_env(struct run_options *o, const char *kv)
{
	char **grown = realloc(o->env, (o->nenv + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	o->env = grown;
	grown[o->nenv] = strdup(kv);
	if (!grown[o->nenv])
		return -ENOMEM;
	o->nenv++;
	return 0;
}

int runopt_add_bind(struct run_options *o, const char *spec)
{
	_cleanup_free_ char *copy = strdup(spec);
	struct run_bind *grown;
	char *dst, *opt;

	if (!copy)
		return -ENOMEM;
	dst = strchr(copy, ':');
	if (!dst || dst == copy || dst[1] != '/')
		return -EINVAL;
	*dst++ = '\0';
	opt = strchr(dst, ':');
	if (opt) {
		*opt++ = '\0';
		if (strcmp(opt, "ro") && strcmp(opt, "rw"))
			return -EINVAL;
	}
	grown = realloc(o->binds, (o->nbinds + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	o->binds = grown;
	grown[o->nbinds] = (struct run_bind){
	    .src = strdup(copy), .dst = strdup(dst), .ro = opt && !strcmp(opt, "ro")};
	o->nbinds++;
	return grown[o->nbinds - 1].src && grown[o->nbinds - 1].dst ? 0 : -ENOMEM;
}

void runopt_free(struct run_options *o)
{
	for (size_t i = 0; i < o->nenv; i++)
		free(o->env[i]);
	free(o->env);
	for (size_t i = 0; i < o->nbinds; i++) {
		free(o->binds[i].src);
		free(o->binds[i].dst);
	}
	free(o->binds);
}
