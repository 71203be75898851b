// The host list's rack filter (hosts/admin_filters.py): choosing a rack in the
// search box opens the list filtered to it; clearing it shows every rack again.
"use strict";
{
  const $ = django.jQuery;
  $(document).on("change", ".rack-filter select", function () {
    const parameter = this.closest(".rack-filter").dataset.parameter;
    const params = new URLSearchParams(window.location.search);
    params.delete(parameter);
    params.delete(parameter.replace("__id__exact", "__isnull"));
    params.delete("p");
    if (this.value) params.set(parameter, this.value);
    window.location.search = params.toString();
  });
}
